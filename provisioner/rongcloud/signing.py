"""Request signing for RongCloud's server API (reference §5).

``Signature = sha1(AppSecret + Nonce + Timestamp)`` in lowercase hex, sent with the ``App-Key``,
``Nonce`` (random, ≤ 18 characters) and ``Timestamp`` (milliseconds since the epoch) headers.
:class:`RongCloudAuth` signs every request it sees afresh, so each retry gets a new nonce and
timestamp. Neither the secret nor the signature is ever logged or shown in a ``repr``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from provisioner.errors import ConfigError

NONCE_BYTES = 8
"""``secrets.token_hex(8)``: 16 hex characters, within the 18 RongCloud allows."""

REQUEST_ID_HEADER = "X-Request-ID"


def new_nonce() -> str:
    """A fresh random nonce (16 lowercase hex characters)."""
    return secrets.token_hex(NONCE_BYTES)


def now_ms() -> int:
    """Milliseconds since the epoch, as RongCloud's docs specify for ``Timestamp``."""
    return time.time_ns() // 1_000_000


def new_request_id() -> str:
    """A request id for ``X-Request-ID`` (32 hex characters, within the 36 allowed)."""
    return uuid.uuid4().hex


def check_credential(name: str, value: str, *, hint: str) -> None:
    """ConfigError when ``value``, the ``name`` ("app key", "app secret"), is empty or cannot
    be sent; the message names the field and the kind of character, never the value."""
    if not value:
        raise ConfigError(f"the {name} is empty", hint=hint)
    problem = credential_problem(value)
    if problem is not None:
        raise ConfigError(
            f"the {name} contains {problem}",
            hint=f"{hint} to the value from the RongCloud console: printable ASCII only "
            "(a value read from a file may end in a newline)",
        )


def credential_problem(value: str) -> str | None:
    """What makes ``value`` unusable as an app key (a header value) or app secret (hashed as
    UTF-8), described without quoting it; ``None`` when it is printable ASCII."""
    for char in value:
        if char in "\r\n":
            return "a line break (CR or LF)"
        if "\ud800" <= char <= "\udfff":
            return "a byte that is not valid UTF-8 (is the environment's locale UTF-8?)"
        if not char.isascii():
            return "a non-ASCII character"
        if not char.isprintable():
            return "a control character"
    return None


def signature(app_secret: str, nonce: str, timestamp: str) -> str:
    """``sha1(app_secret + nonce + timestamp)`` as lowercase hex."""
    return hashlib.sha1((app_secret + nonce + timestamp).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignedHeaders:
    """The four signing headers of one request. ``repr`` hides the signature."""

    app_key: str
    nonce: str
    timestamp: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "App-Key": self.app_key,
            "Nonce": self.nonce,
            "Timestamp": self.timestamp,
            "Signature": self.signature,
        }

    def __repr__(self) -> str:
        return (
            f"SignedHeaders(app_key={self.app_key!r}, nonce={self.nonce!r}, "
            f"timestamp={self.timestamp!r})"
        )


def sign(
    app_key: str,
    app_secret: str,
    *,
    nonce: str | None = None,
    timestamp_ms: int | None = None,
) -> SignedHeaders:
    """Signing headers for one request; nonce and timestamp are fresh unless given."""
    nonce_value = new_nonce() if nonce is None else nonce
    timestamp = str(now_ms() if timestamp_ms is None else timestamp_ms)
    return SignedHeaders(
        app_key, nonce_value, timestamp, signature(app_secret, nonce_value, timestamp)
    )


class RongCloudAuth(httpx.Auth):
    """httpx auth that signs each request with a fresh nonce and timestamp.

    Also sets ``X-Request-ID`` when the caller has not. ``nonce_factory`` and ``clock_ms`` are
    seams for tests.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        nonce_factory: Callable[[], str] = new_nonce,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._app_key = app_key
        self._app_secret = app_secret
        self._nonce_factory = nonce_factory
        self._clock_ms = clock_ms

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = sign(
            self._app_key,
            self._app_secret,
            nonce=self._nonce_factory(),
            timestamp_ms=self._clock_ms(),
        )
        request.headers.update(headers.as_dict())
        if REQUEST_ID_HEADER not in request.headers:
            request.headers[REQUEST_ID_HEADER] = new_request_id()
        yield request

    def __repr__(self) -> str:
        return f"RongCloudAuth(app_key={self._app_key!r})"
