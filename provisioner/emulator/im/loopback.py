"""Where the emulator may deliver a webhook: only to this machine, decided by resolving.

A ``callbackUrl`` whose host is a literal address is delivered when that address is a
loopback one. A host name (``localhost`` included) is resolved when the call is made, and
the call is made only when **every** address it resolves to is a loopback address; it then
goes to the first of them, IPv4 first. The connection is pinned (the name is not resolved
again, so it cannot resolve elsewhere in between), with the URL's own ``Host`` header and,
for https, its name for TLS. A name that does not resolve, or resolves to any other
address, is not called. No name is trusted for its spelling: ``*.localhost`` is resolved
like any other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from provisioner.dify.routing import url_host

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Pinned:
    """A request to a loopback address: the URL to connect to, and what keeps the URL's
    own name (``Host`` header, the TLS name)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def literal_address(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``url``'s host is written as (``None``: a name, or no host)."""
    try:
        return ipaddress.ip_address(url_host(url))
    except ValueError:
        return None


def is_remote_literal(url: str) -> bool:
    """True when ``url`` names a literal address that is not a loopback one (or no host)."""
    address = literal_address(url)
    return (address is not None and not address.is_loopback) or not url_host(url)


async def pinned_loopback(url: str) -> Pinned | None:
    """How to call ``url`` on this machine (see the module docstring); ``None`` when it may
    not be called."""
    parts = urlsplit(url)
    host = url_host(url)
    literal = literal_address(url)
    if literal is not None:
        return Pinned(url) if literal.is_loopback else None
    if not host:
        return None
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        return None
    first = min(addresses, key=lambda a: ":" in a)  # an IPv4 address first, as most servers bind
    shown = f"[{first}]" if ":" in first else first
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Pinned(target, {"Host": parts.netloc.rpartition("@")[2]}, extensions)
