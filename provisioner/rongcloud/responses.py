"""Reading RongCloud's answers: a bounded body, the ``{code, errorMessage}`` envelope, typed
errors, hints, and redaction of secrets a server might echo back.

Success is HTTP 200 **and** body ``code == 200``; anything else becomes an ApiError carrying
the endpoint, HTTP status, ``code``, ``errorMessage`` and ``X-Request-ID``. A body is read
only up to :data:`MAX_ANSWER_BYTES` (:func:`read_body`); JSON nested too deeply to decode is
an ApiError that says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from provisioner.errors import ApiError
from provisioner.secrets import redact

SUCCESS = 200
RATE_LIMITED_CODE = 1008
MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Longest answer body read (4 MiB, after decompression); RongCloud's bot answers are a few KiB."""

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
TOO_DEEP = "its JSON is nested too deeply to decode"
UNREADABLE_HINT = (
    "RongCloud's answers are flat JSON: check that `endpoint` in app.yaml points at RongCloud "
    "(not at a proxy or another service); if it does, report this with the request id"
)


class OversizedAnswer(Exception):
    """An answer's body went past :data:`MAX_ANSWER_BYTES`; reading stopped there."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} answer over {MAX_ANSWER_BYTES} bytes")
        self.status = status


@dataclass(frozen=True)
class Answer:
    """What one HTTP answer said: status, body code and message, request id, decoded body."""

    status: int
    code: int | None
    error_message: str | None
    request_id: str
    data: dict[str, Any]
    unreadable: str | None = None
    """Why a body that may have been JSON could not be decoded (:data:`TOO_DEEP`)."""

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS and self.code == SUCCESS

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or self.code == RATE_LIMITED_CODE


def read_body(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The decoded body of a streamed ``response``, read chunk by chunk and never past ``limit``
    bytes: :class:`OversizedAnswer` as soon as ``Content-Length`` or the bytes read exceed it."""
    if _declares_more_than(response.headers.get("Content-Length", ""), limit):
        raise OversizedAnswer(response.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise OversizedAnswer(response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _declares_more_than(content_length: str, limit: int) -> bool:
    if not (content_length.isascii() and content_length.isdigit()):
        return False
    digits = content_length.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit


def read_answer(
    response: httpx.Response,
    request_id: str,
    secrets: Sequence[str],
    *,
    body: bytes | None = None,
) -> Answer:
    """The :class:`Answer` in ``response``; ``errorMessage`` has ``secrets`` redacted.

    ``body`` is the body already read with :func:`read_body` (default: ``response.content``).
    ``request_id`` is used when the server does not echo ``X-Request-ID``.
    """
    data, unreadable = _json_object(response.content if body is None else body)
    code = data.get("code")
    message = data.get("errorMessage")
    return Answer(
        status=response.status_code,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        error_message=redact(message, secrets) if isinstance(message, str) else None,
        request_id=response.headers.get("X-Request-ID") or request_id,
        data=data,
        unreadable=unreadable,
    )


def api_error(path: str, answer: Answer, kind: type[ApiError] = ApiError) -> ApiError:
    """The typed error for a failed ``answer`` to ``path``, with a hint when one is known."""
    parts = [f"HTTP {answer.status}"]
    if answer.code is not None:
        parts.append(f"code {answer.code}")
    detail = f": {answer.error_message}" if answer.error_message else ""
    message = f"RongCloud rejected {path} ({', '.join(parts)}){detail}"
    if answer.unreadable:
        message = (
            f"RongCloud's answer to {path} (HTTP {answer.status}) is unusable: {answer.unreadable}"
        )
    return kind(
        f"{message} (request id {answer.request_id})",
        endpoint=path,
        http_status=answer.status,
        code=answer.code,
        error_message=answer.error_message,
        request_id=answer.request_id,
        hint=hint_for(answer),
    )


def hint_for(answer: Answer) -> str | None:
    """What to do about a failed ``answer``: by its code, else by its HTTP status."""
    if answer.unreadable:
        return UNREADABLE_HINT
    if answer.code == PARAMETER_CODE and names_app_key(answer.error_message):
        return APP_KEY_HINT
    return HINTS.get(answer.code or 0) or STATUS_HINTS.get(answer.status)


def names_app_key(message: str | None) -> bool:
    """True when an error message names the App-Key (``Invalidate App-Key.``): the 1002 of an
    unknown app key, as opposed to RongCloud's generic parameter error."""
    return bool(_NAMES_APP_KEY.search(message or ""))


def odd_success(path: str, message: str, *, hint: str) -> ApiError:
    """An answer that says success (HTTP 200, code 200) but cannot be used."""
    return ApiError(
        message,
        endpoint=path,
        http_status=SUCCESS,
        code=SUCCESS,
        error_message=None,
        request_id=None,
        hint=hint,
    )


def _json_object(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The body as a JSON object (``{}`` when it is not one), and why it could not be decoded
    when that is worth saying."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}, None
    except RecursionError:  # a JSON nesting past the interpreter's recursion limit
        return {}, TOO_DEEP
    return (data if isinstance(data, dict) else {}), None
