"""The emulator's ASGI application: RongCloud's bot API plus the ``/_emulator/*`` admin API.

Every bot API request goes through the same steps, in this order:

1. injected latency (a waiting request follows a change of ``latency_ms``), then an injected
   HTTP 500 (``error_rate``), then a pending 429 burst;
2. signature check (401 / 1004; an unknown app key 401 / 1002);
3. rate limit per (app key, endpoint) in a 1-second sliding window (429 / 1008, ``Retry-After: 1``);
4. the body, at most the profile's ``body_limit_bytes`` on the bot API (100 KB by default) and
   1 MiB elsewhere (413 / 1508 past that, reading stops at the cap); a client gone
   before it was read is quietly dropped (nothing is done; counted as ``disconnected``);
5. body checks and the operation itself (400 / 1002, 1010, 1502; 404 / 1404; with
   ``random_undocumented_codes`` the invented 1010, 1502 and 1404 are HTTP 400 with a random
   code); a successful write is counted as ``committed``;
6. for a successful write, maybe drop the connection after the commit (``drop_after_commit``).

Every response, admin and errors included, carries ``X-Request-ID`` (the request's own, or a
new UUID). Admin endpoints answer only loopback clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioner.emulator import codes
from provisioner.emulator.admission.ratelimit import SlidingWindowLimiter
from provisioner.emulator.admission.signature import SignatureVerifier
from provisioner.emulator.bots.api import BotApi
from provisioner.emulator.bots.profile import Profile
from provisioner.emulator.faults import FaultInjector
from provisioner.emulator.store import BotStore
from provisioner.emulator.validation import Rejection, parameter_error
from provisioner.errors import ConfigError

TRANSPORT_STATE_KEY = "provisioner.emulator.transport"
REQUEST_ID_HEADER = "x-request-id"
LATENCY_RECHECK_SECONDS = 0.05
ADMIN_PREFIX = "/_emulator/"
RANDOM_CODE_MESSAGE = (
    "undocumented outcome: this code was drawn at random (random_undocumented_codes is on)"
)
MAX_BODY_BYTES = 1024 * 1024
"""Longest request body read outside the bot API (1 MiB: a publish carries up to 128 KB of
content); the bot API's limit is the profile's ``body_limit_bytes`` (100 KB by default)."""
INTEGRATION_DELETE = "/v3/bot/integration/delete.json"

Operation = Callable[[str, Any], dict[str, Any]]


@dataclass
class EmulatorState:
    """Everything the application works with (shared with :class:`EmulatorServer`)."""

    store: BotStore
    verifier: SignatureVerifier
    limiter: SlidingWindowLimiter
    faults: FaultInjector
    profile: Profile = field(default_factory=Profile)


def collect_stats(limiter: SlidingWindowLimiter, faults: FaultInjector) -> dict[str, Any]:
    """The body of ``GET /_emulator/stats`` (without ``code``)."""
    return {**limiter.stats(), "faults": faults.snapshot_counters()}


def reset_stats(limiter: SlidingWindowLimiter, faults: FaultInjector) -> None:
    """Zero every counter and rate window."""
    limiter.reset()
    faults.reset_counters()


def envelope(status: int, code: int, message: str, **headers: str) -> JSONResponse:
    """RongCloud's error body ``{"code": N, "errorMessage": "..."}``."""
    return JSONResponse({"code": code, "errorMessage": message}, status, headers=headers or None)


def rate_limited(message: str) -> JSONResponse:
    return envelope(
        codes.STATUS_TOO_MANY_REQUESTS, codes.CODE_RATE_LIMITED, message, **{"Retry-After": "1"}
    )


def refused(faults: FaultInjector, rejection: Rejection) -> JSONResponse:
    """The envelope of ``rejection``; for an invented code with ``random_undocumented_codes``
    on, HTTP 400 and a random code instead (the message then says only that)."""
    code = faults.undocumented_code() if rejection.invented else None
    if code is None:
        return envelope(rejection.status, rejection.code, rejection.message)
    return envelope(codes.STATUS_UNDOCUMENTED, code, RANDOM_CODE_MESSAGE)


def _endpoint(
    state: EmulatorState,
    operation: Operation,
    *,
    writes: bool,
    decode: Callable[[bytes], Any] | None = None,
    limit: int = MAX_BODY_BYTES,
) -> Callable[[Request], Awaitable[Response]]:
    r"""An endpoint of the server API: faults, admission (signature, rate limit), the body
    (at most ``limit`` bytes) read and ``decode``\ d (JSON by default),
    ``operation(app_key, decoded)``, and for ``writes`` the commit recorded and a connection
    dropped after it when asked."""
    decoded = decode or _decode

    async def endpoint(request: Request) -> Response:
        refusal = await _injected_fault(state.faults)
        if refusal is not None:
            return refusal
        app_key, refusal = _admit(state, request)
        if refusal is not None:
            return refusal
        try:
            raw = await _body(request, limit)
            if raw is None:
                state.limiter.record(app_key, request.url.path, "disconnected")
                return _unsent()
            result = operation(app_key, decoded(raw))
        except Rejection as rejection:
            return refused(state.faults, rejection)
        if writes:
            state.limiter.record(app_key, request.url.path, "committed")
        if writes and state.faults.should_drop() and await _drop_connection(request):
            return _unsent()
        return JSONResponse({"code": codes.CODE_OK, **result})

    return endpoint


async def _injected_fault(faults: FaultInjector) -> Response | None:
    """Latency, then an injected 500 or 429 answer (``None``: carry on)."""
    await _wait_latency(faults)
    if faults.should_fail():
        return envelope(
            codes.STATUS_SERVER_ERROR,
            codes.CODE_INTERNAL,
            "internal error (injected by the emulator)",
        )
    if faults.take_burst():
        return rate_limited("too many requests (injected 429 burst)")
    return None


async def _wait_latency(faults: FaultInjector) -> None:
    """Wait until ``latency_ms`` has passed since the request arrived, re-reading the setting
    at least every :data:`LATENCY_RECHECK_SECONDS`: a test can hold waiting requests by
    raising it and release them by lowering it. No wait when it was 0 on arrival."""
    if not faults.latency_seconds():
        return
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    while (left := arrived + faults.current_latency_seconds() - loop.time()) > 0:
        await asyncio.sleep(min(left, LATENCY_RECHECK_SECONDS))


def _admit(state: EmulatorState, request: Request) -> tuple[str, Response | None]:
    """Signature check, then the rate limit: ``(app_key, None)`` or the refusal to send."""
    app_key, failure = state.verifier.verify(request.headers)
    if failure is not None:
        return app_key, envelope(codes.STATUS_UNAUTHORIZED, failure.code, failure.message)
    path = request.url.path
    if not state.limiter.admit(app_key, path):
        limit = state.limiter.limit
        return app_key, rate_limited(
            f"rate limit: at most {limit} calls per second per app key on {path}"
        )
    return app_key, None


def _unsent() -> Response:
    """What an endpoint returns to a client that is gone: uvicorn discards it without a word."""
    return Response(status_code=codes.STATUS_SERVER_ERROR)


async def _body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or ``None`` when the client disconnected before it could be read.

    A body longer than ``limit``, declared by ``Content-Length`` or found while reading, is
    a :class:`Rejection` (413 / 1508); nothing past the cap is kept (uvicorn discards the
    rest of a body the application did not read once the answer is sent).
    """
    if _declares_too_much(request.headers.get("content-length", ""), limit):
        raise _body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _body_too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks)


def _declares_too_much(content_length: str, limit: int) -> bool:
    if not (content_length.isascii() and content_length.isdigit()):
        return False  # chunked, or malformed (h11 refuses those before the application)
    digits = content_length.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit


def _body_too_large(limit: int) -> Rejection:
    return Rejection(
        codes.STATUS_PAYLOAD_TOO_LARGE,
        codes.CODE_BODY_TOO_LARGE,
        f"body: must be at most {limit} bytes",
    )


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise parameter_error("body", "must be valid JSON") from None


async def _drop_connection(request: Request) -> bool:
    """Close the client connection without answering (the write is already committed).

    The transport comes from :class:`~provisioner.emulator.server.DroppableH11Protocol`; once
    uvicorn has seen the disconnect it discards whatever the endpoint returns, silently.
    ``False`` when there is no transport to close (an ASGI server other than the emulator's).
    """
    transport = request.scope.get("state", {}).get(TRANSPORT_STATE_KEY)
    if transport is None:
        return False
    transport.abort()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while (await request.receive())["type"] != "http.disconnect":
                pass
    return True


def _loopback_only(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        if not _is_loopback(request.client.host if request.client else ""):
            return envelope(
                codes.STATUS_FORBIDDEN,
                codes.STATUS_FORBIDDEN,
                "admin endpoints answer only loopback clients",
            )
        return await handler(request)

    return guarded


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _admin_routes(state: EmulatorState) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return JSONResponse({"code": codes.CODE_OK, "faults": state.faults.config.as_dict()})

    async def set_faults(request: Request) -> Response:
        try:
            raw = await _body(request)
            if raw is None:
                return _unsent()
            body = _decode(raw)
            if not isinstance(body, dict):
                raise parameter_error("body", "must be a JSON object")
            config = state.faults.set(**body)
        except Rejection as rejection:
            return envelope(rejection.status, rejection.code, rejection.message)
        except ConfigError as exc:
            return envelope(codes.STATUS_BAD_REQUEST, codes.CODE_PARAMETER, exc.message)
        return JSONResponse({"code": codes.CODE_OK, "faults": config.as_dict()})

    async def get_stats(request: Request) -> Response:
        return JSONResponse({"code": codes.CODE_OK, **collect_stats(state.limiter, state.faults)})

    async def reset(request: Request) -> Response:
        reset_stats(state.limiter, state.faults)
        return JSONResponse({"code": codes.CODE_OK})

    return [
        Route("/_emulator/faults", _loopback_only(get_faults), methods=["GET"]),
        Route("/_emulator/faults", _loopback_only(set_faults), methods=["POST"]),
        Route("/_emulator/stats", _loopback_only(get_stats), methods=["GET"]),
        Route("/_emulator/reset-stats", _loopback_only(reset), methods=["POST"]),
    ]


def _http_error_handler(
    state: EmulatorState,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Unknown path (404) and wrong method (405) in the envelope; the body code is the HTTP
    status, an invented code (a random one for the bot API with ``random_undocumented_codes``)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else codes.STATUS_SERVER_ERROR
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        message = f"{request.method} {request.url.path}: {detail}"
        admin = request.url.path.startswith(ADMIN_PREFIX)
        return refused(state.faults, Rejection(status, status, message, invented=not admin))

    return http_error


class RequestIdMiddleware:
    """Echo ``X-Request-ID`` on every response (a new UUID when the request has none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode("latin-1"))
        request_id = given or str(uuid.uuid4()).encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER.encode("latin-1")
                ]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id)]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_app(state: EmulatorState, extra_routes: Sequence[Route] = ()) -> ASGIApp:
    """The whole ASGI application for one emulator (``extra_routes``: the message runtime's,
    from :func:`provisioner.emulator.im.publish.message_routes`)."""
    api = BotApi(state.store, state.profile)
    limit = state.profile.body_limit
    operations = {
        "/v3/bot/create.json": (api.create, True),
        "/v3/bot/update.json": (api.update, True),
        "/v3/bot/delete.json": (api.delete, True),
        INTEGRATION_DELETE: (api.integration_delete, True),
        "/v3/bot/get.json": (api.get, False),
        "/v3/bot/query.json": (api.query, False),
    }
    routes = [
        *(
            Route(path, _endpoint(state, op, writes=writes, limit=limit), methods=["POST"])
            for path, (op, writes) in operations.items()
        ),
        *_admin_routes(state),
        *extra_routes,
    ]
    handlers = {HTTPException: _http_error_handler(state)}
    starlette = Starlette(routes=routes, exception_handlers=handlers)
    return RequestIdMiddleware(starlette)
