"""``POST /message/private/publish.json`` (form-encoded and signed, as in RongCloud's guide)
and the loopback-only ``GET /_emulator/conversation``.

The publish endpoint goes through the same steps as the bot API (faults, signature, rate
limit, bounded body; see :mod:`~provisioner.emulator.app`), then checks the form: ``fromUserId``
(1–64 characters), ``toUserId`` (repeated for several recipients, 1–1000 of them),
``objectName`` (1–32), ``content`` (a JSON text of at most 128 KB); other documented fields
(``pushContent``, ``isPersisted``...) are accepted and ignored. It answers
``{"code":200,"messageUIDs":[{"userId","messageUID"}]}`` and then fires the bot's
integrations (:mod:`~provisioner.emulator.im.runtime`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.emulator import codes

# The bot API's steps, shared so that both endpoints behave the same (see app.py).
from provisioner.emulator.app import (
    EmulatorState,
    _endpoint,
    _loopback_only,
    envelope,
)
from provisioner.emulator.im.runtime import MessageRuntime, Published
from provisioner.emulator.im.users import user_routes
from provisioner.emulator.validation import parameter_error

PUBLISH_PATH = "/message/private/publish.json"
MAX_RECIPIENTS = 1000
MAX_CONTENT_BYTES = 128 * 1024


def parse_publish(raw: bytes) -> Published:
    """The form of a publish call; Rejection (400 / 1002) naming the first bad field."""
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise parameter_error("body", "must be form-encoded UTF-8") from None
    from_user = _single(form, "fromUserId", 64)
    to_users = form.get("toUserId") or []
    if not to_users:
        raise parameter_error("toUserId", "is required")
    if len(to_users) > MAX_RECIPIENTS:
        raise parameter_error("toUserId", f"at most {MAX_RECIPIENTS} recipients")
    if any(not user or len(user) > 64 for user in to_users):
        raise parameter_error("toUserId", "each must be 1-64 characters")
    object_name = _single(form, "objectName", 32)
    content = _single(form, "content", MAX_CONTENT_BYTES)
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise parameter_error("content", "must be at most 128 KB")
    try:
        json.loads(content)
    except (ValueError, RecursionError):
        raise parameter_error("content", "must be a JSON text") from None
    return Published(from_user, tuple(dict.fromkeys(to_users)), object_name, content)


def _single(form: dict[str, list[str]], field: str, longest: int) -> str:
    values = form.get(field) or []
    if not values or not values[0]:
        raise parameter_error(field, "is required")
    if len(values) > 1:
        raise parameter_error(field, "must be given once")
    if len(values[0]) > longest:
        raise parameter_error(field, f"must be at most {longest} characters")
    return values[0]


def message_routes(state: EmulatorState, runtime: MessageRuntime) -> list[Route]:
    """The publish endpoint and the conversation admin endpoint, and the users' (getToken
    and its admin view: :mod:`~provisioner.emulator.im.users`)."""
    return [
        Route(PUBLISH_PATH, _publish(state, runtime), methods=["POST"]),
        Route("/_emulator/conversation", _loopback_only(_conversation(runtime)), methods=["GET"]),
        *user_routes(state, runtime.messages),
    ]


def _publish(
    state: EmulatorState, runtime: MessageRuntime
) -> Callable[[Request], Awaitable[Response]]:
    def publish(app_key: str, published: Published) -> dict[str, Any]:
        return {"messageUIDs": runtime.publish(app_key, published)}

    return _endpoint(state, publish, writes=True, decode=parse_publish)


def _conversation(runtime: MessageRuntime) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        query = request.query_params
        missing = [name for name in ("appKey", "userId", "botId") if not query.get(name)]
        if missing:
            return envelope(
                codes.STATUS_BAD_REQUEST,
                codes.CODE_PARAMETER,
                f"{missing[0]}: is required (?appKey=...&userId=...&botId=...)",
            )
        view = runtime.conversation(query["appKey"], query["userId"], query["botId"])
        return JSONResponse({"code": codes.CODE_OK, **view})

    return endpoint
