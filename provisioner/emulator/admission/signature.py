"""Request signature checks: what RongCloud documents, and what its own clients send.

``Signature = hex(sha1(AppSecret + Nonce + Timestamp))``, sent with ``App-Key``, ``Nonce`` and
``Timestamp``; each header may instead carry the ``RC-`` prefix (``RC-App-Key``...). The
timestamp may be in seconds (what every official SDK sends) or milliseconds (what the docs
say); values above ``10**11`` are taken as milliseconds. It must lie within ±5 minutes of the
server clock. Every failure is HTTP 401 / code 1004, except an unknown app key: 401 / 1002
``Invalidate App-Key.``, the real service's words (the status is the emulator's guess).

The docs say a nonce is at most 18 characters and random; RongCloud's own clients break both
rules (the Go SDK sends 19-digit nonces, the Dify plugin reuses ``str(int(time.time()))`` for
every call in a second), so by default any nonce is accepted, again and again. ``strict=True``
enforces the documented length (at most 18 characters) and refuses a replayed nonce (1004);
``replay_code`` (the profile's ``nonce_reuse``) refuses a nonce used before by the same app
key while its timestamp is valid, with that code.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from provisioner.emulator.codes import CODE_PARAMETER, CODE_SIGNATURE

MAX_NONCE_LENGTH = 18
MAX_SKEW_SECONDS = 300.0
MILLISECONDS_THRESHOLD = 10**11
MAX_TIMESTAMP_DIGITS = 16
HEADER_NAMES = ("App-Key", "Nonce", "Timestamp", "Signature")


UNKNOWN_APP_KEY_MESSAGE = "Invalidate App-Key."
"""RongCloud's own answer to an unknown app key (code 1002), as captured in its Java SDK README."""


@dataclass(frozen=True)
class SignatureFailure:
    """Why a request's signature was refused: the errorMessage and code of the 401."""

    message: str
    code: int = CODE_SIGNATURE


def sign(app_secret: str, nonce: str, timestamp: str) -> str:
    """The signature RongCloud expects for these values (lowercase hex SHA-1)."""
    return hashlib.sha1((app_secret + nonce + timestamp).encode("utf-8")).hexdigest()


def read_signed_headers(headers: Mapping[str, str]) -> dict[str, str | None]:
    """The four signing headers, each taken plain or with the ``RC-`` prefix (plain wins)."""
    found: dict[str, str | None] = {}
    for name in HEADER_NAMES:
        found[name] = headers.get(name) or headers.get(f"RC-{name}")
    return found


def timestamp_seconds(raw: str) -> float | None:
    """A ``Timestamp`` header as seconds since the epoch; ``None`` when it is not a number."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_TIMESTAMP_DIGITS:
        return None
    value = int(raw)
    return value / 1000.0 if value > MILLISECONDS_THRESHOLD else float(value)


class NonceRegistry:
    """Nonces seen per app key, remembered as long as a replay could still pass the clock check."""

    def __init__(self, *, window_seconds: float = 2 * MAX_SKEW_SECONDS) -> None:
        self._window = window_seconds
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def remember(self, app_key: str, nonce: str, now: float) -> bool:
        """Record a nonce; ``False`` when it was already used (a replay)."""
        key = (app_key, nonce)
        with self._lock:
            while self._order and self._order[0][0] <= now - self._window:
                self._seen.discard(self._order.popleft()[1])
            if key in self._seen:
                return False
            self._seen.add(key)
            self._order.append((now, key))
            return True


class SignatureVerifier:
    """Checks the signing headers of a request against the known apps (``strict``: the
    documented nonce rules too, see the module docstring)."""

    def __init__(
        self,
        apps: Mapping[str, str],
        *,
        strict: bool = False,
        replay_code: int | None = None,
        clock: Callable[[], float] = time.time,
        nonces: NonceRegistry | None = None,
    ) -> None:
        self._apps = dict(apps)
        self._strict = strict
        self._replay_code = CODE_SIGNATURE if strict else replay_code
        self._clock = clock
        self._nonces = nonces or NonceRegistry()

    def verify(self, headers: Mapping[str, str]) -> tuple[str, SignatureFailure | None]:
        """``(app_key, None)`` when the request is signed correctly, else the failure."""
        values = read_signed_headers(headers)
        app_key = values["App-Key"] or ""
        missing = [name for name, value in values.items() if not value]
        if missing:
            return app_key, SignatureFailure(f"missing header {missing[0]} (or RC-{missing[0]})")
        nonce, raw_timestamp, signature = (
            values["Nonce"] or "",
            values["Timestamp"] or "",
            values["Signature"] or "",
        )
        secret = self._apps.get(app_key)
        if secret is None:
            return app_key, SignatureFailure(UNKNOWN_APP_KEY_MESSAGE, code=CODE_PARAMETER)
        if self._strict and len(nonce) > MAX_NONCE_LENGTH:
            return app_key, SignatureFailure(
                f"Nonce: must be at most {MAX_NONCE_LENGTH} characters"
            )
        stamped = timestamp_seconds(raw_timestamp)
        if stamped is None:
            return app_key, SignatureFailure(
                "Timestamp: must be seconds or milliseconds since the epoch"
            )
        now = self._clock()
        if abs(now - stamped) > MAX_SKEW_SECONDS:
            return app_key, SignatureFailure(
                "Timestamp: more than 5 minutes away from the server clock"
            )
        expected = sign(secret, nonce, raw_timestamp)
        given = signature.lower().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            return app_key, SignatureFailure("Signature: does not match")
        replay = self._replay_code
        if replay is not None and not self._nonces.remember(app_key, nonce, now):
            return app_key, SignatureFailure("Nonce: already used (replayed request)", code=replay)
        return app_key, None
