"""Where a Dify integration's calls go, and whether RongCloud's servers could reach them.

The local rule (``endpoint: local``, and an emulator serving a Dify stand-in): nothing
leaves the machine.

* A ``callbackUrl`` on a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) is called
  as it is: it is on this machine already (a self-hosted Dify, a test server).
* Every other ``callbackUrl`` (``https://api.dify.ai/v1``, a company's Dify) is answered by
  the stand-in: the emulator and ``provisioner check`` call the stand-in's API base instead,
  with the same key, path and body. Without a stand-in such a call is not made at all.

For any other endpoint the ``callbackUrl`` is called as it is, and a URL that RongCloud's
servers cannot reach (a loopback, private or link-local address) is flagged: the check runs
on this machine, but the bot's messages are sent to Dify from RongCloud's data center.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "localhost.localdomain")


def url_host(url: str) -> str:
    """The host of ``url`` in lowercase, without brackets ('' when there is none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine by its spelling: a loopback address, or
    ``localhost`` itself (no other name is taken on trust: ``x.localhost`` is not)."""
    host = url_host(url)
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def private_address(url: str) -> str | None:
    """Why RongCloud's servers cannot reach ``url`` ("a loopback address", "a private
    address", "a link-local address"), or ``None`` when nothing says so. Only literal
    addresses and ``localhost`` are judged: a host name is not resolved."""
    if is_loopback_url(url):
        return "a loopback address"
    try:
        address = ipaddress.ip_address(url_host(url))
    except ValueError:
        return None
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "a private address"
    return None


class DifyRoute:
    """The local rule (module docstring): ``stand_in`` is the stand-in's API base
    (``http://127.0.0.1:PORT/v1``), or ``None`` when no stand-in runs."""

    def __init__(self, stand_in: str | None) -> None:
        self.stand_in = stand_in.rstrip("/") if stand_in else None

    def target(self, callback_url: str) -> str | None:
        """The API base to call for ``callback_url``; ``None`` when the call may not be
        made (not on this machine, and no stand-in)."""
        if is_loopback_url(callback_url):
            return callback_url.rstrip("/")
        return self.stand_in

    def routed(self, callback_url: str) -> bool:
        """True when calls for ``callback_url`` go to the stand-in instead."""
        return not is_loopback_url(callback_url) and self.stand_in is not None
