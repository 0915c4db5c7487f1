"""The Dify stand-in: the part of Dify's Service API that RongCloud and ``provisioner
check`` use, for apps configured explicitly (:mod:`~provisioner.emulator.dify.apps`).

Endpoints, under ``/v1`` with ``Authorization: Bearer <app key>``:

* ``GET /info``: ``{name, description, tags, mode, author_name}`` (``legacy``: name and
  description only, as Dify before mid-2024);
* ``GET /parameters``: the app's ``user_input_form`` and (switched-off) features;
* ``POST /chat-messages`` (chat, agent-chat, advanced-chat apps) and
  ``POST /completion-messages`` (completion apps), blocking or streaming (``event: ping``
  keep-alives, the answer in pieces; a Chatflow's ``workflow_finished`` before
  ``message_end``);
* ``GET /messages`` and ``GET /conversations``: the history
  (:mod:`~provisioner.emulator.dify.history`).

Dify's error envelope ``{code, message, status}`` and its codes: 401 ``unauthorized`` (no,
malformed or unknown key), 403 ``forbidden`` (app disabled, or deleted: "The app no longer
exists."; 404 ``not_found`` with ``legacy``), 400 ``not_chat_app`` (a completion, workflow or
New Agent app on ``/chat-messages``), ``app_unavailable`` (unpublished, or a non-completion
app on ``/completion-messages``), ``invalid_param`` (no ``user``, a body or input Dify
refuses: :mod:`~provisioner.emulator.dify.payloads`; blocking mode on an agent app), 404
``not_found`` (an unknown conversation, or one of another user), 429 ``too_many_requests`` /
``rate_limit_error`` (the ``busy`` / ``quota`` faults).

Answers are deterministic and say the turn: ``Helper (turn 2): you said “b”. Before that you
said “a”.``; completions count the user's requests instead. Conversations are kept per app and
user (:mod:`~provisioner.emulator.dify.store`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from provisioner.dify.protocol import MODE_NAMES, STREAMING_ONLY_MODES
from provisioner.emulator.dify.apps import DifyApp
from provisioner.emulator.dify.payloads import (
    ChatRequestPayload,
    CompletionRequestPayload,
    InputCrash,
    InputRefused,
    checked_inputs,
    parsed,
)
from provisioner.emulator.dify.store import DifyStore, Turn, app_digest
from provisioner.errors import ConfigError

CHAT_MODES = frozenset({"chat", "agent-chat", "advanced-chat"})
"""The modes Dify's ``ChatApi`` serves (a New Agent app gets ``not_chat_app``)."""
MAX_BODY_BYTES = 1024 * 1024
RECEIVED_KEPT = 200
FAULT_FIELDS = ("busy", "quota", "stream_error")
LIMITED = frozenset({"text-input", "paragraph"})
"""The input kinds that have a ``max_length``."""

MISSING_BEARER = "Authorization header must be provided and start with 'Bearer'"
INVALID_TOKEN = "Access token is invalid"
DISABLED = "The app's API service has been disabled."
GONE = "The app no longer exists."
NO_USER = "Arg user must be provided."
INTERNAL = "The server encountered an internal error and was unable to complete your request."
NOT_FOUND = "The requested URL was not found on the server."
APP_UNAVAILABLE = "App unavailable, please check your app configurations."
NOT_CHAT_APP = "Please check if your app mode matches the right API route."
NO_CONVERSATION = "Conversation Not Exists."
BUSY = "Too many requests. Please try again later. (Dify stand-in: the busy fault)"
QUOTA = "You have reached the rate limit of your plan. (Dify stand-in: the quota fault)"
STREAM_FAILURE = "The model failed in the middle of the answer. (Dify stand-in: stream_error)"


class Refusal(Exception):
    """An answer in Dify's error envelope (caught inside the application)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        body = {"code": self.code, "message": self.message, "status": self.status}
        return JSONResponse(body, self.status)


@dataclass(frozen=True)
class DifyFaults:
    """What the stand-in does wrong on purpose: ``busy`` = the next N authorized requests
    get 429 ``too_many_requests``; ``quota`` = every authorized request gets 429
    ``rate_limit_error``; ``stream_error`` = every stream stops after its first piece with
    an ``error`` event (HTTP status 200)."""

    busy: int = 0
    quota: bool = False
    stream_error: bool = False


class StandInState:
    """The apps, their memory, the faults, and the last requests received (without keys)."""

    def __init__(self, apps: Sequence[DifyApp], store: DifyStore) -> None:
        self.apps = {app.api_key: app for app in apps}
        self.store = store
        self.received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_KEPT)
        self.hits: Counter[str] = Counter()
        self._faults = DifyFaults()
        self._lock = threading.Lock()

    @property
    def faults(self) -> DifyFaults:
        with self._lock:
            return self._faults

    def set_faults(self, **fields: Any) -> DifyFaults:
        unknown = sorted(set(fields) - set(FAULT_FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown Dify stand-in fault {', '.join(unknown)}",
                hint=f"use any of: {', '.join(FAULT_FIELDS)}",
            )
        with self._lock:
            self._faults = dataclasses.replace(self._faults, **fields)
            return self._faults

    def take_fault(self) -> Refusal | None:
        """The 429 an authorized request gets from the faults (counting ``busy`` down)."""
        with self._lock:
            if self._faults.quota:
                return Refusal(429, "rate_limit_error", QUOTA)
            if self._faults.busy > 0:
                self._faults = dataclasses.replace(self._faults, busy=self._faults.busy - 1)
                return Refusal(429, "too_many_requests", BUSY)
        return None


def authorized_app(state: StandInState, request: Request) -> DifyApp:
    """The app whose key the request carries; a Refusal otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        raise Refusal(401, "unauthorized", MISSING_BEARER)
    app = state.apps.get(token.strip())
    if app is None:
        raise Refusal(401, "unauthorized", INVALID_TOKEN)
    if app.deleted:
        raise Refusal(403, "forbidden", GONE)
    if not app.enabled:
        raise (
            Refusal(404, "not_found", NOT_FOUND)
            if app.legacy
            else Refusal(403, "forbidden", DISABLED)
        )
    fault = state.take_fault()
    if fault is not None:
        raise fault
    return app


def info_body(app: DifyApp) -> dict[str, Any]:
    body: dict[str, Any] = {"name": app.name, "description": f"{MODE_NAMES[app.mode]} stand-in"}
    if not app.legacy:
        body.update(tags=[], mode=app.mode, author_name="provisioner")
    return body


def parameters_body(app: DifyApp) -> dict[str, Any]:
    if not app.published:
        raise Refusal(400, "app_unavailable", APP_UNAVAILABLE)
    form = [
        {
            item.kind: {
                "label": item.label or item.variable,
                "variable": item.variable,
                "required": item.required,
                "default": "",
                **({"options": list(item.options)} if item.kind == "select" else {}),
                **({"max_length": item.max_length or 0} if item.kind in LIMITED else {}),
            }
        }
        for item in app.inputs
    ]
    off = {"enabled": False}
    return {
        "opening_statement": "",
        "suggested_questions": [],
        "suggested_questions_after_answer": off,
        "speech_to_text": off,
        "text_to_speech": off,
        "retriever_resource": off,
        "annotation_reply": off,
        "more_like_this": off,
        "sensitive_word_avoidance": off,
        "user_input_form": form,
        "file_upload": {"image": off},
        "system_parameters": {"file_size_limit": 15, "image_file_size_limit": 10},
    }


@dataclass(frozen=True)
class Generation:
    """A generation request, checked: who asks, what, and how the answer goes back."""

    app: DifyApp
    user: str
    query: str
    streaming: bool
    conversation_id: str
    inputs: dict[str, Any]
    """As received."""
    kept: dict[str, Any]
    """As Dify keeps them: the app's form, checked."""


async def generation(request: Request, app: DifyApp, *, completion: bool) -> Generation:
    """The checked body of a generation request, in Dify's order: the user, the body
    (:mod:`~provisioner.emulator.dify.payloads`), the mode, the inputs (Refusal: 400
    ``invalid_param`` etc.)."""
    if not app.published:
        raise Refusal(400, "app_unavailable", APP_UNAVAILABLE)
    raw = await request.body()
    try:
        body = json.loads(raw) if len(raw) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise Refusal(
            400, "invalid_param", "Invalid JSON payload received or JSON payload is empty."
        )
    user = body.get("user")
    if not isinstance(user, str) or not user:
        raise Refusal(400, "invalid_param", NO_USER)
    try:
        if completion:
            ask: CompletionRequestPayload | ChatRequestPayload = parsed(
                CompletionRequestPayload, body
            )
        else:
            ask = parsed(ChatRequestPayload, body)
        streaming = ask.response_mode == "streaming"
        if not streaming and app.mode in STREAMING_ONLY_MODES:
            raise InputRefused("Agent Chat App does not support blocking mode")
        if not completion and not ask.query:
            raise InputRefused("query is required")
        inputs = checked_inputs(app.inputs, ask.inputs)
    except InputRefused as exc:
        raise Refusal(400, "invalid_param", str(exc)) from None
    except InputCrash:
        raise Refusal(500, "internal_server_error", INTERNAL) from None
    query = ask.query
    if completion:
        given = inputs.get("query", ask.inputs.get("query"))
        query = given if isinstance(given, str) else ask.query
    conversation = getattr(ask, "conversation_id", None) or ""
    return Generation(
        app, user, query.replace("\x00", ""), streaming, conversation, ask.inputs, inputs
    )


def chat_answer(app: DifyApp, turn: Turn, query: str) -> str:
    answer = f"{app.name} (turn {turn.number}): you said “{query}”."
    if turn.previous_query is not None:
        answer += f" Before that you said “{turn.previous_query}”."
    return answer


def completion_answer(app: DifyApp, count: int, query: str) -> str:
    return f"{app.name} (request {count} from this user): {query}"


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


PING = "event: ping\n\n"


def stream_events(ask: Generation, answer: str, ids: dict[str, Any], *, fail: bool) -> list[str]:
    """The SSE stream of one answer (see the module docstring for the event kinds)."""
    mode = ask.app.mode
    pieces = re.findall(r"\S+\s*", answer) or [answer]
    kind = "agent_message" if mode in STREAMING_ONLY_MODES else "message"
    events = [PING]
    if mode == "advanced-chat":
        events.append(_sse({"event": "workflow_started", **ids, "data": {"id": ids["task_id"]}}))
    if mode == "agent-chat":
        events.append(_sse({"event": "agent_thought", **ids, "position": 1, "thought": ""}))
    for number, piece in enumerate(pieces):
        events.append(_sse({"event": kind, **ids, "answer": piece}))
        if number == 0:
            events.append(PING)
        if fail:
            return events + _failure_events(ask, ids)
    if mode == "advanced-chat":  # Dify: the workflow's end first, then the message's
        finished = {"id": ids["task_id"], "status": "succeeded", "outputs": {"answer": answer}}
        events.append(_sse({"event": "workflow_finished", **ids, "data": finished}))
    usage = {"prompt_tokens": len(ask.query), "completion_tokens": len(answer)}
    events.append(_sse({"event": "message_end", **ids, "metadata": {"usage": usage}}))
    return events


def _failure_events(ask: Generation, ids: dict[str, Any]) -> list[str]:
    events = []
    if ask.app.mode == "advanced-chat":
        failed = {"id": ids["task_id"], "status": "failed", "error": STREAM_FAILURE}
        events.append(_sse({"event": "workflow_finished", **ids, "data": failed}))
    error = {"event": "error", "task_id": ids["task_id"], "message_id": ids["message_id"]}
    error.update(status=400, code="completion_request_error", message=STREAM_FAILURE)
    return [*events, _sse(error)]


async def _streamed(events: list[str]) -> AsyncIterator[str]:
    for event in events:
        yield event
        await asyncio.sleep(0)


def answered(
    state: StandInState,
    ask: Generation,
    answer: str,
    conversation_id: str | None,
    message_id: str,
) -> Response:
    """The blocking JSON or the stream of ``answer``."""
    ids: dict[str, Any] = {"task_id": str(uuid.uuid4()), "id": message_id}
    ids.update(message_id=message_id, created_at=int(time.time()))
    if conversation_id is not None:
        ids["conversation_id"] = conversation_id
    if ask.streaming:
        events = stream_events(ask, answer, ids, fail=state.faults.stream_error)
        return StreamingResponse(_streamed(events), media_type="text/event-stream")
    usage = {"prompt_tokens": len(ask.query), "completion_tokens": len(answer)}
    mode = "chat" if ask.app.mode == "chat" else ask.app.mode
    body = {"event": "message", **ids, "mode": mode, "answer": answer}
    return JSONResponse({**body, "metadata": {"usage": usage}})


def _record(state: StandInState, request: Request, ask: Generation) -> None:
    state.received.append(
        {
            "path": request.url.path,
            "app": ask.app.name,
            "user": ask.user,
            "query": ask.query,
            "response_mode": "streaming" if ask.streaming else "blocking",
            "conversation_id": ask.conversation_id,
            "inputs": dict(ask.inputs),
        }
    )


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(state: StandInState, handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        state.hits[f"{request.method} {request.url.path}"] += 1
        try:
            return await handler(request)
        except Refusal as refusal:
            return refusal.response()

    return endpoint


def build_dify_app(state: StandInState, extra_routes: Sequence[Route] = ()) -> ASGIApp:
    """The stand-in's ASGI application (``extra_routes``: the history's, from
    :func:`provisioner.emulator.dify.history.history_routes`)."""

    async def info(request: Request) -> Response:
        return JSONResponse(info_body(authorized_app(state, request)))

    async def parameters(request: Request) -> Response:
        return JSONResponse(parameters_body(authorized_app(state, request)))

    async def chat(request: Request) -> Response:
        app = authorized_app(state, request)
        if app.mode not in CHAT_MODES:
            raise Refusal(400, "not_chat_app", NOT_CHAT_APP)
        ask = await generation(request, app, completion=False)
        turn = state.store.next_turn(
            app_digest(app.api_key), ask.user, ask.conversation_id, ask.query
        )
        if turn is None:
            raise Refusal(404, "not_found", NO_CONVERSATION)
        _record(state, request, ask)
        answer, message_id = chat_answer(app, turn, ask.query), str(uuid.uuid4())
        if not (ask.streaming and state.faults.stream_error):  # a failed answer is not kept
            state.store.add_message(turn.conversation_id, message_id, ask.query, answer, ask.kept)
        return answered(state, ask, answer, turn.conversation_id, message_id)

    async def completion(request: Request) -> Response:
        app = authorized_app(state, request)
        if app.mode != "completion":
            raise Refusal(400, "app_unavailable", APP_UNAVAILABLE)
        ask = await generation(request, app, completion=True)
        count = state.store.next_completion(app_digest(app.api_key), ask.user)
        _record(state, request, ask)
        answer = completion_answer(app, count, ask.query)
        return answered(state, ask, answer, None, str(uuid.uuid4()))

    routes = [
        Route("/v1/info", _guarded(state, info), methods=["GET"]),
        Route("/v1/parameters", _guarded(state, parameters), methods=["GET"]),
        Route("/v1/chat-messages", _guarded(state, chat), methods=["POST"]),
        Route("/v1/completion-messages", _guarded(state, completion), methods=["POST"]),
        *extra_routes,
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal_server_error")
        message = NOT_FOUND if status == 404 else f"{request.method} {request.url.path}: refused"
        return Refusal(status, code, message).response()

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
