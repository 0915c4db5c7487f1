"""RongCloud's signed bot API: hosts and failover, signing, rate limiting, the client.

    hosts_for_endpoint("sg")  -> ["https://api.sg-light-api.com", "https://api-b.sg-light-api.com"]
    with RongCloudClient(app_key=..., app_secret=..., hosts=...) as client:
        client.query_bots()

Importing the package is cheap: the names below are loaded from their modules on first use,
so ``provisioner.rongcloud.models`` (pure pydantic values, used by the plan core) does not
pull in httpx. Importing ``RongCloudClient`` imports httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.rongcloud.client import RongCloudClient
    from provisioner.rongcloud.hosts import DATA_CENTERS, hosts_for_endpoint
    from provisioner.rongcloud.models import AuthPayload, BotPayload, IntegrationPayload
    from provisioner.rongcloud.ratelimit import DEFAULT_RATE, MAX_RATE, RATE_LIMITERS
    from provisioner.rongcloud.signing import RongCloudAuth, sign

_HOMES = {
    "DATA_CENTERS": "hosts",
    "DEFAULT_RATE": "ratelimit",
    "MAX_RATE": "ratelimit",
    "RATE_LIMITERS": "ratelimit",
    "AuthPayload": "models",
    "BotPayload": "models",
    "IntegrationPayload": "models",
    "RongCloudAuth": "signing",
    "RongCloudClient": "client",
    "hosts_for_endpoint": "hosts",
    "sign": "signing",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
