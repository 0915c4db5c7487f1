"""The Dify stand-in's history: ``GET /messages`` and ``GET /conversations``, as Dify serves
them (what Dify's own Python SDK, ``dify-client``, calls with ``get_conversation_messages``
and ``get_conversations``).

* Both read for the end user named by the ``user`` query parameter (``DEFAULT-USER`` when
  there is none, as Dify) and only for chat apps (else 400 ``not_chat_app``).
* ``GET /messages?conversation_id=&first_id=&limit=``: the latest ``limit`` (1–100, default
  20) messages of the conversation, oldest first, before ``first_id`` when given;
  ``{limit, has_more, data: [{id, conversation_id, parent_message_id, inputs, query, answer,
  message_files, feedback, retriever_resources, created_at, agent_thoughts, status,
  error}]}``; 404 ``not_found`` "Conversation Not Exists." (unknown, or another user's) and
  "First Message Not Exists.".
* ``GET /conversations?last_id=&limit=&sort_by=``: the user's conversations with the app,
  ``sort_by`` one of ``created_at``, ``updated_at`` (``-`` for newest first, the default
  ``-updated_at``), after ``last_id``; ``{limit, has_more, data: [{id, name, inputs, status,
  introduction, created_at, updated_at}]}``; 404 "Last Conversation Not Exists.".

An optional query parameter given empty counts as left out (httpx sends ``None`` as
``name=``); ``conversation_id`` is required, and given empty it lists nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# the stand-in's own steps, shared so that every endpoint behaves the same (see app.py)
from provisioner.emulator.dify.app import (
    CHAT_MODES,
    NO_CONVERSATION,
    NOT_CHAT_APP,
    Refusal,
    StandInState,
    _guarded,
    authorized_app,
)
from provisioner.emulator.dify.apps import DifyApp
from provisioner.emulator.dify.payloads import (
    DEFAULT_USER,
    ConversationListQuery,
    InputRefused,
    MessageListQuery,
    Model,
    parsed,
    query_fields,
)
from provisioner.emulator.dify.store import StoredConversation, StoredMessage, app_digest

CONVERSATION_NAME = "New conversation"
NO_FIRST_MESSAGE = "First Message Not Exists."
NO_LAST_CONVERSATION = "Last Conversation Not Exists."


def _chat_app(state: StandInState, request: Request) -> tuple[DifyApp, str]:
    app = authorized_app(state, request)
    if app.mode not in CHAT_MODES:
        raise Refusal(400, "not_chat_app", NOT_CHAT_APP)
    return app, request.query_params.get("user") or DEFAULT_USER


def _query(
    request: Request, model: type[Model], names: Sequence[str], optional: Sequence[str]
) -> Model:
    try:
        return parsed(model, query_fields(request.query_params, names, optional))
    except InputRefused as exc:
        raise Refusal(400, "invalid_param", str(exc)) from None


def message_page(state: StandInState, request: Request) -> dict[str, Any]:
    """The answer to ``GET /messages`` (see the module docstring)."""
    app, user = _chat_app(state, request)
    optional = ("first_id", "limit")
    query = _query(request, MessageListQuery, ("conversation_id", *optional), optional)
    if query.conversation_id is None:
        return {"limit": query.limit, "has_more": False, "data": []}
    if not state.store.owns(app_digest(app.api_key), user, query.conversation_id):
        raise Refusal(404, "not_found", NO_CONVERSATION)
    messages = state.store.messages(query.conversation_id)
    if query.first_id is not None:
        messages = _before(messages, query.first_id, NO_FIRST_MESSAGE)
    page = messages[-query.limit :]
    parents = {m.id: p.id for p, m in itertools.pairwise(messages)}
    return {
        "limit": query.limit,
        "has_more": len(messages) > len(page),
        "data": [_message_item(m, parents.get(m.id)) for m in page],
    }


def conversation_page(state: StandInState, request: Request) -> dict[str, Any]:
    """The answer to ``GET /conversations`` (see the module docstring)."""
    app, user = _chat_app(state, request)
    names = ("last_id", "limit", "sort_by")
    query = _query(request, ConversationListQuery, names, names)
    key = query.sort_by.lstrip("-")
    found = state.store.user_conversations(app_digest(app.api_key), user)
    found.sort(key=lambda c: c.created_at if key == "created_at" else c.updated_at)
    if query.sort_by.startswith("-"):
        found.reverse()
    if query.last_id is not None:
        found = _after(found, query.last_id)
    page = found[: query.limit]
    return {
        "limit": query.limit,
        "has_more": len(found) > len(page),
        "data": [_conversation_item(c) for c in page],
    }


def _before(messages: list[StoredMessage], first_id: str, missing: str) -> list[StoredMessage]:
    index = next((n for n, m in enumerate(messages) if m.id == first_id), None)
    if index is None:
        raise Refusal(404, "not_found", missing)
    return messages[:index]


def _after(found: list[StoredConversation], last_id: str) -> list[StoredConversation]:
    index = next((n for n, c in enumerate(found) if c.id == last_id), None)
    if index is None:
        raise Refusal(404, "not_found", NO_LAST_CONVERSATION)
    return found[index + 1 :]


def _message_item(message: StoredMessage, parent: str | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "parent_message_id": parent,
        "inputs": message.inputs,
        "query": message.query,
        "answer": message.answer,
        "message_files": [],
        "feedback": None,
        "retriever_resources": [],
        "created_at": message.created_at,
        "agent_thoughts": [],
        "status": "normal",
        "error": None,
    }


def _conversation_item(conversation: StoredConversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "name": CONVERSATION_NAME,
        "inputs": conversation.inputs,
        "status": "normal",
        "introduction": "",
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def history_routes(state: StandInState) -> list[Route]:
    """``GET /v1/messages`` and ``GET /v1/conversations``."""

    async def messages(request: Request) -> Response:
        return JSONResponse(message_page(state, request))

    async def conversations(request: Request) -> Response:
        return JSONResponse(conversation_page(state, request))

    return [
        Route("/v1/messages", _guarded(state, messages), methods=["GET"]),
        Route("/v1/conversations", _guarded(state, conversations), methods=["GET"]),
    ]
