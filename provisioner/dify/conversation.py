"""``provisioner check --converse``: a real two-message conversation with each Dify app,
sent the way RongCloud sends a user's messages (:func:`~provisioner.dify.protocol.dify_request`:
``query`` or ``inputs.query``, ``user`` = :data:`PROBE_USER`, ``response_mode`` from the
integration's ``stream``, the bot and sender in ``inputs``), the second message with the
``conversation_id`` the first answer returned (chat and chatflow apps).

It passes when both answers arrive (a streamed ``error`` event, even after HTTP 200, is a
failure) and, for chat and chatflow apps, the second answer stays in the first one's
conversation. It costs tokens, so it runs only when asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from provisioner.diagnostics import Diagnostic
from provisioner.dify.client import DifyClient
from provisioner.dify.protocol import (
    TEXT_MESSAGE,
    Reply,
    dify_request,
    generation_path,
    private_message_callback,
    text_content,
)
from provisioner.dify.targets import Target
from provisioner.errors import DifyError

PROBE_USER = "provisioner-preflight"
"""The ``user`` (RongCloud: the sender) of the conversation check's messages."""
MESSAGES = (
    "Hello! This is provisioner check: the first of two test messages.",
    "Second test message from provisioner check: do you remember my first one?",
)


@dataclass(frozen=True)
class Exchange:
    """One message of the check and Dify's answer."""

    text: str
    reply: Reply


@dataclass(frozen=True)
class Conversation:
    """What the conversation check of one target got: the exchanges that succeeded, whether
    the conversation was kept (``None`` for a completion app, which has none), and what went
    wrong."""

    exchanges: tuple[Exchange, ...]
    kept: bool | None
    diagnostics: tuple[Diagnostic, ...] = ()


def converse(target: Target, client: DifyClient) -> Conversation:
    """Two messages to the target's app (see the module docstring)."""
    chat = target.integration.type != "dify_completion"
    exchanges: list[Exchange] = []
    conversation_id: str | None = None
    for number, text in enumerate(MESSAGES, start=1):
        try:
            reply = client.send(
                generation_path(target.integration.type),
                _request(target, text, conversation_id),
            )
        except DifyError as exc:
            return Conversation(tuple(exchanges), None, (_failed(target, number, exc),))
        exchanges.append(Exchange(text, reply))
        problem = _problem(target, number, reply, conversation_id if chat else None)
        if problem is not None:
            return Conversation(tuple(exchanges), False if chat else None, (problem,))
        conversation_id = reply.conversation_id
    return Conversation(tuple(exchanges), True if chat else None)


def _request(target: Target, text: str, conversation_id: str | None) -> dict[str, object]:
    callback = private_message_callback(
        target.callback_bot,
        from_user=PROBE_USER,
        object_name=TEXT_MESSAGE,
        content=text_content(text),
        timestamp_ms=time.time_ns() // 1_000_000,
    )
    return dify_request(
        target.integration.type,
        stream=target.integration.stream,
        callback=callback,
        user=PROBE_USER,
        conversation_id=conversation_id,
    )


def _problem(target: Target, number: int, reply: Reply, kept: str | None) -> Diagnostic | None:
    """An empty answer, or (chat apps) a conversation that was not kept."""
    if not reply.answer.strip():
        return target.finding(
            (),
            "dify-no-answer",
            f"message {number} of 2 got an empty answer from Dify",
            "see the app's logs in Dify: its model or workflow produced no text",
        )
    if target.integration.type == "dify_completion":
        return None
    if not reply.conversation_id:
        return target.finding(
            (),
            "dify-conversation-lost",
            f"the answer to message {number} of 2 names no conversation_id, so RongCloud "
            "cannot continue the conversation",
            "check that the app is a chat or chatflow app of a current Dify",
        )
    if kept is not None and reply.conversation_id != kept:
        return target.finding(
            (),
            "dify-conversation-lost",
            "the answer to message 2 of 2 is in another conversation than the first: the "
            "context is not carried over",
            "see the app's logs in Dify: the conversation may have ended or been deleted",
        )
    return None


def _failed(target: Target, number: int, exc: DifyError) -> Diagnostic:
    return target.finding(
        (),
        "dify-converse-failed",
        f"message {number} of 2 failed: {exc.message}",
        exc.hint,
    )
