"""The emulator's message runtime: what a message to a bot sets off, the way RongCloud does.

A published message to a bot fires each enabled integration of the bot whose ``objectNames``
(when given) include the message's type and whose ``events`` (when given) include
``message:private``, after the publish call has been answered:

* ``webhook``: ``POST callbackUrl`` with the documented callback (``type``, ``timestamp``,
  ``bot{…}``, ``data{fromUserId, toUserId, objectName, content, channelType}``) and RongCloud's
  callback signature in the query: ``nonce``, ``signTimestamp`` (milliseconds) and
  ``signature`` = sha1(appSecret + nonce + signTimestamp), lowercase hex;
* a Dify type: the request of :func:`~provisioner.dify.protocol.dify_request`, with the
  ``conversation_id`` kept for 24 hours per sender and bot; with ``handleResponse`` the answer
  is stored as the bot's reply to the sender (a streamed answer as one message, once whole).

Nothing leaves the machine: a webhook is delivered only to a loopback address, its host
name resolved when the call is made (:mod:`~provisioner.emulator.im.loopback`), and a Dify
call goes where :class:`~provisioner.dify.routing.DifyRoute` says (the stand-in, or a
loopback ``callbackUrl``); anything else is recorded as ``skipped``. Every delivery is
recorded (``pending`` → ``delivered`` / ``failed``), with a detail that never holds a key.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from provisioner.dify.protocol import (
    PRIVATE_MESSAGE_EVENT,
    TEXT_MESSAGE,
    Reply,
    StreamReader,
    blocking_reply,
    dify_request,
    error_envelope,
    generation_path,
    private_message_callback,
    text_content,
)
from provisioner.dify.routing import DifyRoute
from provisioner.emulator.admission.signature import sign
from provisioner.emulator.im.loopback import is_remote_literal, pinned_loopback
from provisioner.emulator.im.messages import Message, MessageStore, new_message_uid
from provisioner.emulator.store import BotStore
from provisioner.errors import DifyError
from provisioner.secrets import redact

DEFAULT_CALLBACK_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 1024 * 1024
MAX_STREAM_BYTES = 8 * 1024 * 1024
DIFY_TYPES = frozenset({"dify_chat", "dify_completion", "dify_chatflow"})
WEBHOOK_ELSEWHERE = (
    "the emulator delivers webhooks only to this machine (a host that resolves to loopback "
    "addresses only)"
)


@dataclass(frozen=True)
class Published:
    """A message as published: who to whom, of what type, with what content."""

    from_user: str
    to_users: tuple[str, ...]
    object_name: str
    content: str


@dataclass(frozen=True)
class Firing:
    """One integration a message fires: the delivery row and where the call goes. A Dify
    call waits for ``after`` (the sender's previous message to the bot) and sets ``turn``
    when done, so a conversation's messages reach Dify in the order they were published."""

    delivery: int
    integration: dict[str, Any]
    url: str
    after: asyncio.Future[None] | None = None
    turn: asyncio.Future[None] | None = None


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment (they may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def signed_url(url: str, app_secret: str, timestamp_ms: int) -> str:
    """``url`` with RongCloud's callback signature (``nonce``, ``signTimestamp``,
    ``signature``) added to its query."""
    nonce = secrets.token_hex(8)
    stamp = str(timestamp_ms)
    query = urlencode(
        {"nonce": nonce, "signTimestamp": stamp, "signature": sign(app_secret, nonce, stamp)}
    )
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


class MessageRuntime:
    """Publishes messages and runs what they fire (see the module docstring). ``publish``
    runs in the server's event loop; the deliveries run there as tasks."""

    def __init__(
        self,
        *,
        bots: BotStore,
        messages: MessageStore,
        apps: Mapping[str, str],
        route: DifyRoute,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    ) -> None:
        self.bots = bots
        self.messages = messages
        self.apps = dict(apps)
        self.route = route
        self.timeout = callback_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns: dict[tuple[str, str, str], asyncio.Future[None]] = {}

    def publish(self, app_key: str, published: Published) -> list[dict[str, str]]:
        """Store one message per recipient, fire what it fires; the ``messageUIDs``."""
        uids = []
        for to_user in published.to_users:
            message = Message(
                new_message_uid(),
                published.from_user,
                to_user,
                published.object_name,
                published.content,
                self.messages.clock_ms(),
            )
            self.messages.add(app_key, message)
            self._fire(app_key, message)
            uids.append({"userId": to_user, "messageUID": message.uid})
        return uids

    def conversation(self, app_key: str, user: str, bot: str) -> dict[str, Any]:
        """The admin view of ``user``'s conversation with ``bot`` (never a key)."""
        read = self.messages.conversation(app_key, user, bot)
        messages, deliveries, session = read.messages, read.deliveries, read.dify_session
        return {
            "appKey": app_key,
            "userId": user,
            "botId": bot,
            "difyConversation": (
                {"conversationId": session[0], "startedAt": session[1]} if session else None
            ),
            "difyStandIn": self.route.stand_in,
            "messages": [
                {
                    "messageUID": m.uid,
                    "fromUserId": m.from_user,
                    "toUserId": m.to_user,
                    "objectName": m.object_name,
                    "content": m.content,
                    "sentAt": m.sent_at,
                    **({"replyTo": m.reply_to} if m.reply_to else {}),
                    **({"deliveries": deliveries[m.uid]} if m.uid in deliveries else {}),
                }
                for m in messages
            ],
        }

    # firing ------------------------------------------------------------------------------

    def _fire(self, app_key: str, message: Message) -> None:
        stored = self.bots.get(app_key, message.to_user)
        if stored is None:
            return
        bot = stored.body
        firings = [
            firing
            for integration in bot.get("integrations", [])
            if _listens(integration, message.object_name)
            and (firing := self._plan(app_key, message, integration)) is not None
        ]
        if firings:
            task = asyncio.get_running_loop().create_task(
                self._deliver(app_key, bot, message, firings)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _plan(self, app_key: str, message: Message, integration: dict[str, Any]) -> Firing | None:
        """Record the delivery; a Firing when the call may be made, else it is skipped."""
        uid = message.uid
        kind, url = integration["type"], integration["callbackUrl"]
        if kind == "webhook":  # a name is resolved when the call is made
            target: str | None = None if is_remote_literal(url) else url
            why = WEBHOOK_ELSEWHERE
        else:
            target = self.route.target(url)
            why = (
                "the emulator calls only this machine, and no Dify stand-in runs "
                "(emulator.dify in app.yaml, or emulator serve --dify-apps)"
            )
        if target is None:
            self.messages.add_delivery(uid, kind, shown_url(url), "skipped", f"not sent: {why}")
            return None
        if kind in DIFY_TYPES and target != url.rstrip("/"):
            shown = f"{shown_url(url)} (answered by the Dify stand-in)"
        else:
            shown = shown_url(url)
        delivery = self.messages.add_delivery(uid, kind, shown, "pending", "")
        if kind not in DIFY_TYPES:
            return Firing(delivery, integration, target)
        key = (app_key, message.from_user, message.to_user)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        after, self._turns[key] = self._turns.get(key), turn
        return Firing(delivery, integration, target, after, turn)

    async def _deliver(
        self, app_key: str, bot: dict[str, Any], message: Message, firings: list[Firing]
    ) -> None:
        timeout = httpx.Timeout(self.timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            await asyncio.gather(
                *(self._run(client, app_key, bot, message, firing) for firing in firings)
            )

    async def _run(
        self,
        client: httpx.AsyncClient,
        app_key: str,
        bot: dict[str, Any],
        message: Message,
        firing: Firing,
    ) -> None:
        callback = private_message_callback(
            bot,
            from_user=message.from_user,
            object_name=message.object_name,
            content=message.content,
            timestamp_ms=message.sent_at,
        )
        try:
            if firing.integration["type"] == "webhook":
                status, detail = await self._webhook(client, app_key, callback, firing.url)
            else:
                status, detail = await self._dify(client, app_key, callback, message, firing)
        except Exception as exc:  # a bug must not kill the server's loop; recorded instead
            status, detail = "failed", f"internal error in the emulator ({type(exc).__name__})"
        self.messages.settle_delivery(firing.delivery, status, detail)  # type: ignore[arg-type]

    async def _webhook(
        self, client: httpx.AsyncClient, app_key: str, callback: dict[str, Any], url: str
    ) -> tuple[str, str]:
        pinned = await pinned_loopback(url)
        if pinned is None:
            return "skipped", f"not sent: {WEBHOOK_ELSEWHERE}"
        signed = signed_url(pinned.url, self.apps.get(app_key, ""), self.messages.clock_ms())
        try:  # the answer's body is not read: RongCloud documents none
            async with client.stream(
                "POST", signed, json=callback, headers=pinned.headers, extensions=pinned.extensions
            ) as response:
                status = response.status_code
        except httpx.RequestError as exc:
            return "failed", f"no answer ({type(exc).__name__})"
        return ("delivered" if 200 <= status < 300 else "failed"), f"HTTP {status}"

    async def _dify(
        self,
        client: httpx.AsyncClient,
        app_key: str,
        callback: dict[str, Any],
        message: Message,
        firing: Firing,
    ) -> tuple[str, str]:
        key = (app_key, message.from_user, message.to_user)
        if firing.after is not None:  # one message at a time, in order: its id must be known
            await asyncio.wait([firing.after])
        try:
            return await self._dify_turn(client, key, callback, message, firing)
        finally:
            if firing.turn is not None and not firing.turn.done():
                firing.turn.set_result(None)
            if self._turns.get(key) is firing.turn:
                del self._turns[key]

    async def _dify_turn(
        self,
        client: httpx.AsyncClient,
        key: tuple[str, str, str],
        callback: dict[str, Any],
        message: Message,
        firing: Firing,
    ) -> tuple[str, str]:
        integration = firing.integration
        session = self.messages.dify_session(*key)  # kept 24 hours
        body = dify_request(
            integration["type"],
            stream=integration.get("stream", True),
            callback=callback,
            user=message.from_user,
            conversation_id=session[0] if session else None,
        )
        api_key = (integration.get("auth") or {}).get("apiKey", "")
        path = generation_path(integration["type"])
        try:
            reply = await call_dify(client, firing.url, api_key, path, body)
        except DifyError as exc:
            if exc.status == 404 and exc.code == "not_found" and session:
                self.messages.forget_dify_session(*key)
            return "failed", exc.message
        kept = session[0] if session else None
        chat = integration["type"] != "dify_completion"
        if chat and reply.conversation_id and reply.conversation_id != kept:
            self.messages.keep_dify_session(*key, reply.conversation_id)
        return "delivered", self._answered(key[0], message, integration, reply)

    def _answered(
        self, app_key: str, message: Message, integration: dict[str, Any], reply: Reply
    ) -> str:
        mode = "streaming" if integration.get("stream", True) else "blocking"
        if not integration.get("handleResponse", True):
            return f"Dify answered ({mode}); not stored as a reply (handleResponse: false)"
        answer = Message(
            new_message_uid(),
            message.to_user,
            message.from_user,
            TEXT_MESSAGE,
            text_content(reply.answer),
            self.messages.clock_ms(),
            reply_to=message.uid,
        )
        self.messages.add(app_key, answer)
        return f"Dify answered ({mode}); stored as the bot's reply {answer.uid}"


def _listens(integration: dict[str, Any], object_name: str) -> bool:
    names, events = integration.get("objectNames"), integration.get("events")
    return (
        integration.get("enabled", True)
        and (not names or object_name in names)
        and (not events or PRIVATE_MESSAGE_EVENT in events)
    )


# --- calling Dify from the server's event loop --------------------------------------------


async def call_dify(
    client: httpx.AsyncClient, base: str, api_key: str, path: str, body: dict[str, Any]
) -> Reply:
    """One generation request, read like :class:`~provisioner.dify.client.DifyClient` does
    (bounded, an ``error`` event is a DifyError, the key redacted)."""
    endpoint = f"POST {path}"
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        async with client.stream("POST", base + path, json=body, headers=headers) as response:
            if response.status_code != 200 or body.get("response_mode") != "streaming":
                raw = b"".join([chunk async for chunk in _bounded(response, MAX_ANSWER_BYTES)])
                return _blocking(endpoint, response.status_code, raw, api_key)
            reader = StreamReader(endpoint, secrets=[api_key])
            async for line in _lines(response):
                reader.feed(line)
            return reader.reply()
    except httpx.RequestError as exc:
        raise DifyError(
            f"{endpoint}: no answer ({type(exc).__name__})", endpoint=endpoint
        ) from None


def _blocking(endpoint: str, status: int, raw: bytes, api_key: str) -> Reply:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if status == 200:
        return blocking_reply(data, endpoint)
    code, message = error_envelope(data)
    message = redact(message, [api_key]) if message else None
    said = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    raise DifyError(
        f"Dify answered {endpoint} with {said}",
        endpoint=endpoint,
        status=status,
        code=code,
        dify_message=message,
    )


async def _bounded(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise DifyError(
                f"Dify's answer is longer than {limit // 2**20} MiB", endpoint="POST", status=200
            )
        yield chunk


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    pending = b""
    async for chunk in _bounded(response, MAX_STREAM_BYTES):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.removesuffix(b"\r").decode("utf-8", "replace")
