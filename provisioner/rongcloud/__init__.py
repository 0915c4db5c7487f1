"""RongCloud's signed bot API: hosts and failover, signing, rate limiting, the client.

    hosts_for_endpoint("sg")  -> ["https://api.sg-light-api.com", "https://api-b.sg-light-api.com"]
    with RongCloudClient(app_key=..., app_secret=..., hosts=...) as client:
        client.query_bots()

Importing this package imports httpx; CLI commands import it inside their function bodies.
"""

from provisioner.rongcloud.client import RongCloudClient
from provisioner.rongcloud.hosts import DATA_CENTERS, hosts_for_endpoint
from provisioner.rongcloud.models import AuthPayload, BotPayload, IntegrationPayload
from provisioner.rongcloud.ratelimit import DEFAULT_RATE, MAX_RATE, RATE_LIMITERS
from provisioner.rongcloud.signing import RongCloudAuth, sign

__all__ = [
    "DATA_CENTERS",
    "DEFAULT_RATE",
    "MAX_RATE",
    "RATE_LIMITERS",
    "AuthPayload",
    "BotPayload",
    "IntegrationPayload",
    "RongCloudAuth",
    "RongCloudClient",
    "hosts_for_endpoint",
    "sign",
]
