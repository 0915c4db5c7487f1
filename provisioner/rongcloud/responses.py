"""Reading RongCloud's answers: the ``{code, errorMessage}`` envelope, typed errors, hints,
``Retry-After``, and redaction of secrets a server might echo back.

Success is HTTP 200 **and** body ``code == 200``; anything else becomes an ApiError carrying
the endpoint, HTTP status, ``code``, ``errorMessage`` and ``X-Request-ID``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from provisioner.errors import ApiError

SUCCESS = 200
RATE_LIMITED_CODE = 1008
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this."""
REDACTED = "(sensitive)"
MIN_REDACTED_LENGTH = 6
"""Shorter "secrets" (test values like ``s``) are not searched for: they would shred the text."""

HINTS = {
    1001: "check RONGCLOUD_APP_KEY and RONGCLOUD_APP_SECRET: the secret does not match the key",
    1004: "check the app key and secret, and that this machine's clock is in sync (NTP)",
    1008: "lower the rate limit (rateLimit in app.yaml) or try again later",
    1009: "enable the bot service for this app in the RongCloud console",
}
STATUS_HINTS = {
    401: HINTS[1004],
    403: "the app key may not be allowed to call this API; check the RongCloud console",
    429: HINTS[1008],
}
PARAMETER_CODE = 1002
APP_KEY_HINT = (
    "check appKey in app.yaml (or the variable it references), and that `endpoint` names the "
    "app's data center: an app key is known only in the data center it was created in"
)
"""For a 1002 whose message names the App-Key: RongCloud's answer to an unknown app key is
``{"code":1002,"errorMessage":"Invalidate App-Key."}``."""
_NAMES_APP_KEY = re.compile(r"app[\s_-]?key", re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    """What one HTTP answer said: status, body code and message, request id, decoded body."""

    status: int
    code: int | None
    error_message: str | None
    request_id: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS and self.code == SUCCESS

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or self.code == RATE_LIMITED_CODE


def read_answer(response: httpx.Response, request_id: str, secrets: Sequence[str]) -> Answer:
    """The :class:`Answer` in ``response``; ``errorMessage`` has ``secrets`` redacted.

    ``request_id`` is used when the server does not echo ``X-Request-ID``.
    """
    data = _json_object(response)
    code = data.get("code")
    message = data.get("errorMessage")
    return Answer(
        status=response.status_code,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        error_message=redact(message, secrets) if isinstance(message, str) else None,
        request_id=response.headers.get("X-Request-ID") or request_id,
        data=data,
    )


def api_error(path: str, answer: Answer, kind: type[ApiError] = ApiError) -> ApiError:
    """The typed error for a failed ``answer`` to ``path``, with a hint when one is known."""
    parts = [f"HTTP {answer.status}"]
    if answer.code is not None:
        parts.append(f"code {answer.code}")
    detail = f": {answer.error_message}" if answer.error_message else ""
    return kind(
        f"RongCloud rejected {path} ({', '.join(parts)}){detail} (request id {answer.request_id})",
        endpoint=path,
        http_status=answer.status,
        code=answer.code,
        error_message=answer.error_message,
        request_id=answer.request_id,
        hint=hint_for(answer),
    )


def hint_for(answer: Answer) -> str | None:
    """What to do about a failed ``answer``: by its code, else by its HTTP status."""
    if answer.code == PARAMETER_CODE and _NAMES_APP_KEY.search(answer.error_message or ""):
        return APP_KEY_HINT
    return HINTS.get(answer.code or 0) or STATUS_HINTS.get(answer.status)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), capped at
    :data:`MAX_RETRY_AFTER`; ``None`` when absent or unreadable. ``now`` is epoch seconds."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (of at least 6 characters) replaced by ``(sensitive)``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_LENGTH:
            text = text.replace(secret, REDACTED)
    return text


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
