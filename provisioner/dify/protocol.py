"""Dify's Service API as RongCloud uses it: app modes, the callback RongCloud builds for a
message, the request it sends to Dify, and reading Dify's answers (blocking JSON and the SSE
stream). Pure: no I/O. Shared by the pre-flight, the conversation check and the emulator's
message runtime, so all three send and read exactly the same thing.

What RongCloud sends (reference §2.5, RongCloud's Dify-callback page): ``query`` (for a
completion app ``inputs.query`` instead), ``response_mode`` from the integration's ``stream``,
``user`` = the sender, ``conversation_id`` (chat and chatflow), and ``inputs`` = the callback
data flattened (``inputs.bot_name``, ``inputs.data_fromUserId``, ``inputs.data_content`` are
the documented examples; the rest of the naming, nested keys joined with ``_``, is inferred).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.errors import DifyError, DifyUnreachableError
from provisioner.secrets import redact

MODES_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "dify_chat": ("chat", "agent-chat"),
    "dify_chatflow": ("advanced-chat",),
    "dify_completion": ("completion",),
}
"""The Dify app modes each RongCloud integration type serves."""
TYPE_FOR_MODE = {mode: kind for kind, modes in MODES_FOR_TYPE.items() for mode in modes}
MODE_NAMES = {
    "chat": "Chatbot",
    "agent-chat": "Agent",
    "advanced-chat": "Chatflow",
    "completion": "Text Generator",
    "workflow": "Workflow",
    "agent": "New Agent",
}
"""Dify's modes (``GET /info`` ``mode``) and the names Dify's console gives them."""
STREAMING_ONLY_MODES = frozenset({"agent-chat", "agent"})
"""Modes that answer only in streaming mode (a blocking request is refused)."""
CHAT_PATH = "/chat-messages"
COMPLETION_PATH = "/completion-messages"
PRIVATE_MESSAGE_EVENT = "message:private"
PRIVATE_CHANNEL = "PERSON"
TEXT_MESSAGE = "RC:TxtMsg"


def generation_path(integration_type: str) -> str:
    """The endpoint RongCloud calls under the integration's ``callbackUrl``."""
    return COMPLETION_PATH if integration_type == "dify_completion" else CHAT_PATH


def bot_fields(bot: Mapping[str, Any]) -> dict[str, Any]:
    """The ``bot`` object of a callback: ``userId``, ``name``, ``profileUrl``, ``type`` and
    ``metadata`` (when the bot has any)."""
    fields = {key: bot[key] for key in ("userId", "name", "profileUrl", "type") if key in bot}
    if bot.get("metadata"):
        fields["metadata"] = dict(bot["metadata"])
    return fields


def private_message_callback(
    bot: Mapping[str, Any],
    *,
    from_user: str,
    object_name: str,
    content: str,
    timestamp_ms: int,
) -> dict[str, Any]:
    """The callback of a one-to-one message to ``bot`` (reference §2.6): what a webhook
    receives, and what RongCloud flattens into a Dify request's ``inputs``."""
    return {
        "type": PRIVATE_MESSAGE_EVENT,
        "timestamp": timestamp_ms,
        "bot": bot_fields(bot),
        "data": {
            "fromUserId": from_user,
            "toUserId": bot["userId"],
            "objectName": object_name,
            "content": content,
            "channelType": PRIVATE_CHANNEL,
        },
    }


def flattened(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"bot": {"name": "x"}}`` → ``{"bot_name": "x"}``: nested keys joined with ``_``,
    every value as text (Dify's text inputs take strings)."""
    flat: dict[str, str] = {}
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(item, Mapping):
            flat.update(flattened(item, name))
        elif isinstance(item, bool):
            flat[name] = "true" if item else "false"
        else:
            flat[name] = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    return flat


def message_text(object_name: str, content: str) -> str:
    """The text a message carries: ``content`` of an ``RC:TxtMsg``'s JSON, else the raw
    content."""
    if object_name != TEXT_MESSAGE:
        return content
    try:
        decoded = json.loads(content)
    except ValueError:
        return content
    text = decoded.get("content") if isinstance(decoded, dict) else None
    return text if isinstance(text, str) else content


def text_content(text: str) -> str:
    """The ``content`` of an ``RC:TxtMsg`` holding ``text``: ``{"content": text, "extra": ""}``."""
    return json.dumps({"content": text, "extra": ""}, ensure_ascii=False)


def dify_request(
    integration_type: str,
    *,
    stream: bool,
    callback: Mapping[str, Any],
    user: str,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """The body RongCloud posts to :func:`generation_path` for ``callback`` (see the module
    docstring); ``conversation_id`` continues a chat (``None`` or ``""``: a new one)."""
    data = callback["data"]
    text = message_text(data["objectName"], data["content"])
    inputs = flattened(callback)
    body: dict[str, Any] = {
        "inputs": inputs,
        "response_mode": "streaming" if stream else "blocking",
        "user": user,
    }
    if integration_type == "dify_completion":
        inputs["query"] = text
    else:
        body["query"] = text
        body["conversation_id"] = conversation_id or ""
    return body


def filled_inputs(integration_type: str, bot: Mapping[str, Any]) -> frozenset[str]:
    """The ``inputs`` variables RongCloud fills for a message to ``bot``."""
    return frozenset(_inputs(integration_type, bot, Sample()))


@dataclass(frozen=True)
class Sample:
    """What varies from one message to the next: the sender, the text, the time."""

    sender: str = "user-a"
    text: str = "text a"
    timestamp_ms: int = 1


@dataclass(frozen=True)
class Filled:
    """How RongCloud fills one input variable: ``value`` when it is the same for every
    message to the bot, else ``carries`` what it varies with: ``message`` (the user's
    text), ``sender`` or ``time``."""

    value: str | None
    carries: str | None = None


_VARIED = {
    "message": Sample(text="text b, longer"),
    "sender": Sample(sender="user-b"),
    "time": Sample(timestamp_ms=2),
}


def filled_values(integration_type: str, bot: Mapping[str, Any]) -> dict[str, Filled]:
    """Each ``inputs`` variable RongCloud fills for a message to ``bot``, and how
    (:class:`Filled`), found by building the request for messages that differ in one way."""
    base = _inputs(integration_type, bot, Sample())
    varied = {what: _inputs(integration_type, bot, s) for what, s in _VARIED.items()}
    found = {}
    for name, value in base.items():
        carries = next((what for what, other in varied.items() if other[name] != value), None)
        found[name] = Filled(None if carries else value, carries)
    return found


def could_fill(
    integration_type: str, bot: Mapping[str, Any], name: str, carries: str, value: str
) -> bool:
    """True when some message would fill the variable ``name`` (which varies with
    ``carries``) with exactly ``value``."""
    if carries == "message":
        tries = [Sample(text=value), Sample(text=message_text(TEXT_MESSAGE, value))]
    elif carries == "sender":
        tries = [Sample(sender=value)]
    else:
        tries = [Sample(timestamp_ms=int(value))] if value.isascii() and value.isdigit() else []
    return any(_inputs(integration_type, bot, each).get(name) == value for each in tries)


def _inputs(integration_type: str, bot: Mapping[str, Any], sample: Sample) -> dict[str, Any]:
    callback = private_message_callback(
        bot,
        from_user=sample.sender,
        object_name=TEXT_MESSAGE,
        content=text_content(sample.text),
        timestamp_ms=sample.timestamp_ms,
    )
    request = dify_request(integration_type, stream=False, callback=callback, user=sample.sender)
    inputs: dict[str, Any] = request["inputs"]
    return inputs


# --- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Dify's answer to one message. ``first_token_seconds``: from sending the request to the
    first piece of the answer (``None`` for a blocking answer: it arrives whole)."""

    answer: str
    conversation_id: str | None
    message_id: str | None
    first_token_seconds: float | None = None


def error_envelope(data: object) -> tuple[str | None, str | None]:
    """``(code, message)`` of Dify's error body ``{"code", "message", "status"}``."""
    if not isinstance(data, dict):
        return None, None
    code, message = data.get("code"), data.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def blocking_reply(data: object, endpoint: str) -> Reply:
    """The :class:`Reply` in a blocking answer's JSON; DifyError when it holds none."""
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        raise DifyError(
            f"Dify's answer to {endpoint} holds no answer text",
            endpoint=endpoint,
            status=200,
            hint="check that callbackUrl is the Dify API base (ending in /v1) of a chat, "
            "chatflow or completion app",
        )
    return Reply(data["answer"], _text(data, "conversation_id"), _text(data, "message_id"))


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


class SseDecoder:
    """Server-sent events from lines: :meth:`feed` one line at a time (without its line
    break); a blank line ends an event, returned as ``(event field, data)``."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return None

    def close(self) -> tuple[str, str] | None:
        """The last event, when the stream ended without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> tuple[str, str] | None:
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = "", []
        return (event, data) if event or data else None


class StreamReader:
    """Dify's streaming events, in order, into a :class:`Reply`.

    ``message`` (chat, chatflow, completion) and ``agent_message`` (agent apps) carry the
    answer in pieces; the New Agent mode closes its ``agent_message`` pieces with one
    ``message`` holding the whole answer, so agent pieces win over message pieces.
    ``message_replace`` replaces the answer so far; ``message_end`` ends it; ``ping`` and
    every other event (``workflow_*``, ``node_*``, ``agent_thought``, ``tts_*``...) are
    skipped. An ``error`` event (the HTTP status stays 200) raises DifyError, as does a
    stream that ends without ``message_end``. :meth:`feed` takes the stream's lines (an
    :class:`SseDecoder` makes them events), :meth:`event` one event.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        secrets: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._secrets = list(secrets)
        self._clock = clock
        self._started = clock() if started is None else started
        self._message: list[str] = []
        self._agent: list[str] = []
        self._first_token: float | None = None
        self._conversation_id: str | None = None
        self._message_id: str | None = None
        self._failed_workflow = False
        self._decoder = SseDecoder()
        self.ended = False

    def feed(self, line: str) -> None:
        """One line of the stream, without its line break."""
        event = self._decoder.feed(line)
        if event is not None:
            self.event(*event)

    def event(self, sse_event: str, data: str) -> None:
        """One event (the ``event:`` field and the ``data:`` text)."""
        if sse_event == "ping" and not data.strip():
            return
        payload = self._decode(data)
        name = payload.get("event") if isinstance(payload.get("event"), str) else sse_event
        self._conversation_id = _text(payload, "conversation_id") or self._conversation_id
        self._message_id = _text(payload, "message_id") or self._message_id
        if name == "error":
            raise self._stream_error(payload)
        if name in ("message", "agent_message"):
            self._piece(name, payload.get("answer"))
        elif name == "message_replace" and isinstance(payload.get("answer"), str):
            self._message, self._agent = [payload["answer"]], []
        elif name == "message_end":
            self.ended = True
        elif name == "workflow_finished":
            result = payload.get("data")
            self._failed_workflow = isinstance(result, dict) and result.get("status") == "failed"

    def reply(self) -> Reply:
        """The answer, once the stream is over (a last event without its blank line
        counts); DifyError when it never reached ``message_end``."""
        last = self._decoder.close()
        if last is not None:
            self.event(*last)
        if not self.ended:
            what = "the workflow failed" if self._failed_workflow else "the stream ended"
            raise DifyUnreachableError(
                f"Dify's stream from {self.endpoint} ended before message_end ({what})",
                endpoint=self.endpoint,
                status=200,
                hint="see the app's logs in Dify; a proxy may also have cut the stream",
            )
        answer = "".join(self._agent or self._message)
        return Reply(answer, self._conversation_id, self._message_id, self._first_token)

    def _piece(self, name: str, answer: object) -> None:
        if not isinstance(answer, str):
            return
        if answer and self._first_token is None:
            self._first_token = max(0.0, self._clock() - self._started)
        (self._agent if name == "agent_message" else self._message).append(answer)

    def _decode(self, data: str) -> dict[str, Any]:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise DifyError(
                f"Dify's stream from {self.endpoint} holds an event that is not a JSON object",
                endpoint=self.endpoint,
                status=200,
                hint="check that callbackUrl is the Dify API base, not a proxy or another service",
            )
        return payload

    def _stream_error(self, payload: Mapping[str, Any]) -> DifyError:
        code, message = error_envelope(payload)
        message = redact(message, self._secrets) if message else None
        detail = ": ".join(part for part in (code, message) if part) or "no details"
        return DifyError(
            f"Dify reported an error in the middle of the stream from {self.endpoint} "
            f"(after HTTP 200): {detail}",
            endpoint=self.endpoint,
            status=200,
            code=code,
            dify_message=message,
            hint="see the app's logs in Dify (model provider, quota, workflow nodes)",
        )
