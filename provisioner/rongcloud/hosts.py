"""Where RongCloud's server API lives: data centers, base URLs, and primary → backup failover.

An app belongs to exactly one data center, each served by a primary and a backup host
(reference §6.1). An explicit base URL may be given instead; it must be ``https`` unless it
points at a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``), which is how the local
emulator is reached.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from provisioner.errors import ConfigError

DATA_CENTERS: dict[str, tuple[str, str]] = {
    "cn": ("https://api.rong-api.com", "https://api-b.rong-api.com"),
    "sg": ("https://api.sg-light-api.com", "https://api-b.sg-light-api.com"),
    "sg-b": ("https://api.sg-b-light-api.com", "https://api-b.sg-b-light-api.com"),
    "na": ("https://api.us-light-api.com", "https://api-b.us-light-api.com"),
    "sa": ("https://api.sau-light-api.com", "https://api-b.sau-light-api.com"),
}
"""Data center name → (primary, backup) base URL."""

DATA_CENTER_ALIASES: dict[str, str] = {"sau": "sa"}
"""Other names of a data center: RongCloud's SDKs call the Saudi one ``SAU``."""

_ALIAS_OF = {name: alias for alias, name in DATA_CENTER_ALIASES.items()}
_ENDPOINT_HINT = (
    "use a data center ("
    + ", ".join(f"{name}/{_ALIAS_OF[name]}" if name in _ALIAS_OF else name for name in DATA_CENTERS)
    + ") or a base URL such as https://api.example.com"
)


def hosts_for_endpoint(endpoint: str) -> list[str]:
    """Base URLs to call for ``endpoint``, in order of preference.

    A data center name (or alias, :data:`DATA_CENTER_ALIASES`) gives ``[primary, backup]``; a
    base URL gives ``[url]`` (normalised, no trailing slash). Raises ConfigError for an unknown
    name, a malformed URL, or plain ``http`` to anything but a loopback address.
    """
    name = endpoint.strip()
    name = DATA_CENTER_ALIASES.get(name, name)
    if name in DATA_CENTERS:
        return list(DATA_CENTERS[name])
    if "://" not in name:
        raise ConfigError(f"unknown endpoint {endpoint!r}", hint=_ENDPOINT_HINT)
    return [validate_base_url(name)]


def validate_base_url(url: str) -> str:
    """``url`` normalised (no trailing slash) once it passes the https-or-loopback rule."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"malformed endpoint URL {url!r}", hint=_ENDPOINT_HINT) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"malformed endpoint URL {url!r}", hint=_ENDPOINT_HINT)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "endpoint URL must not contain credentials",
            hint="remove the user:password@ part; requests are signed with the app key and secret",
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"endpoint URL {url!r} must not have a query or fragment",
            hint="give only scheme, host, optional port and optional path prefix",
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"endpoint URL {url!r} uses plain http",
            hint="use https://; plain http is allowed only for loopback addresses "
            "(127.0.0.1, ::1, localhost), e.g. the local emulator",
        )
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback IP address (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HostRing:
    """The hosts of one client and which of them is current; safe to share between threads.

    Calls go to the current host. ``fail_over(host)`` moves to the next host, but only when
    ``host`` is still current, so several threads reporting the same failure switch once.
    """

    def __init__(self, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ConfigError(
                "no RongCloud host configured",
                hint="pass a data center name or a base URL as the endpoint",
            )
        self._hosts = [validate_base_url(host) for host in hosts]
        self._index = 0
        self._lock = threading.Lock()

    @property
    def hosts(self) -> list[str]:
        return list(self._hosts)

    def current(self) -> str:
        with self._lock:
            return self._hosts[self._index]

    def fail_over(self, failed_host: str) -> str:
        """Make the host after ``failed_host`` current (if it still is); return the current host."""
        with self._lock:
            if self._hosts[self._index] == failed_host:
                self._index = (self._index + 1) % len(self._hosts)
            return self._hosts[self._index]
