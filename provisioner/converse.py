"""Talking to a bot the way a user does (steps 2, 4 and 5 of RongCloud's bot guide):
register the sender (``/user/getToken.json``), publish a text message through the app's
endpoint and, on the emulator, wait for the bot's reply and count the messages Dify recorded
in the conversation it used (Dify's ``GET /messages``, as the guide checks Dify's log).

``endpoint: local`` starts the embedded emulator with the app's Dify stand-in, so the
message runs the whole way on this machine; a loopback endpoint that answers the emulator's
admin API is waited on the same way. On the real service the reply goes to the user's
clients, so only the message id comes back.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from provisioner.connect import Credentials, app_stand_in, credentials, local_emulator
from provisioner.dify.client import DifyClient
from provisioner.dify.protocol import TEXT_MESSAGE, message_text, text_content
from provisioner.dify.routing import DifyRoute, is_loopback_url
from provisioner.errors import ConfigError, ProvisionerError
from provisioner.models import DesiredApp, Integration
from provisioner.rongcloud import RongCloudClient
from provisioner.rongcloud.messages import publish_private, register_user
from provisioner.secrets import resolve

DEFAULT_SENDER = "provisioner-user"
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Delivery:
    """What the message fired on the emulator: one integration's call and how it ended."""

    integration: str
    target: str
    status: str
    detail: str


@dataclass(frozen=True)
class Conversed:
    """One message sent, and (on the emulator) what came of it."""

    bot: str
    sender: str
    message_uid: str
    on_emulator: bool
    replies: tuple[str, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    timed_out: bool = False
    dify_messages: int | None = None
    """How many messages Dify recorded in the conversation the message used (emulator)."""

    @property
    def failed(self) -> bool:
        return self.timed_out or any(d.status == "failed" for d in self.deliveries)


@dataclass(frozen=True)
class _Endpoint:
    reached: Credentials
    emulator: str | None
    """The emulator's base URL when the endpoint is one (its admin API answers)."""


def converse(
    app: DesiredApp,
    bot_id: str,
    text: str,
    *,
    sender: str,
    env: Mapping[str, str],
    timeout: float,
    base_dir: Path,
    sender_name: str | None = None,
) -> Conversed:
    """Register ``sender`` (named ``sender_name``, default its userId), send ``text`` from it
    to ``bot_id`` of ``app``; on the emulator, wait (up to ``timeout`` seconds) until
    everything the message fired has ended. ``env`` is read here only, for the app's
    credentials, (on the embedded emulator) its Dify stand-in's keys and the bot's Dify key."""
    if bot_id not in {bot.userId for bot in app.bots}:
        known = ", ".join(bot.userId for bot in app.bots) or "none"
        raise ConfigError(
            f"app {app.name} has no bot {bot_id!r} in its manifests",
            hint=f"give one of its bots' userId: {known}",
        )
    with _endpoint(app, env, base_dir) as endpoint:
        _require_bot(app, endpoint.reached, bot_id)
        register_user(
            app_key=endpoint.reached.app_key,
            app_secret=endpoint.reached.app_secret,
            hosts=endpoint.reached.hosts,
            user_id=sender,
            name=sender_name or sender,
        )
        uid = publish_private(
            app_key=endpoint.reached.app_key,
            app_secret=endpoint.reached.app_secret,
            hosts=endpoint.reached.hosts,
            from_user=sender,
            to_user=bot_id,
            object_name=TEXT_MESSAGE,
            content=text_content(text),
        )
        if endpoint.emulator is None:
            return Conversed(bot_id, sender, uid, on_emulator=False)
        view = _wait(endpoint, bot_id, sender, uid, timeout)
        sent = _outcome(bot_id, sender, uid, view)
        count = _dify_count(app, bot_id, sender, view, env)
        return sent if count is None else dataclasses.replace(sent, dify_messages=count)


@contextmanager
def _endpoint(app: DesiredApp, env: Mapping[str, str], base_dir: Path) -> Iterator[_Endpoint]:
    """Where the message goes: a local app's emulator (with its Dify stand-in) for the block,
    else the app's endpoint, which may be an emulator of one's own on this machine."""
    found = credentials(app, env, _no_credentials)
    if found.is_local:
        with local_emulator(app, base_dir, app_stand_in(app, env)) as served:
            yield _Endpoint(served, served.hosts[0])
        return
    yield _Endpoint(found, found.hosts[0] if _is_emulator(found.hosts[0]) else None)


def _no_credentials(missing: Sequence[str]) -> ConfigError:
    return ConfigError(
        f"no credentials to send a message: {', '.join(missing)}",
        hint="export the variables appKey and appSecret reference in app.yaml",
    )


def _is_emulator(base: str) -> bool:
    """True when ``base`` is on this machine and answers the emulator's admin API."""
    if not is_loopback_url(base):
        return False
    try:
        answer = httpx.get(f"{base}/_emulator/stats", timeout=2.0)
        return answer.status_code == 200 and "limit" in answer.json()
    except (httpx.HTTPError, ValueError):
        return False


def _require_bot(app: DesiredApp, reached: Credentials, bot_id: str) -> None:
    with RongCloudClient(
        app_key=reached.app_key, app_secret=reached.app_secret, hosts=reached.hosts
    ) as client:
        found = client.get_bots([bot_id])
    if not found:
        raise ConfigError(
            f"bot {bot_id} of app {app.name} is not on the server yet",
            hint=f"run `provisioner apply {app.name}` first",
        )


def _wait(
    endpoint: _Endpoint, bot_id: str, sender: str, uid: str, timeout: float
) -> dict[str, Any] | None:
    """The message's view once none of its deliveries is pending; None after ``timeout``."""
    params = {"appKey": endpoint.reached.app_key, "userId": sender, "botId": bot_id}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=endpoint.emulator or "", timeout=5.0) as client:
        while True:
            view: dict[str, Any] = client.get("/_emulator/conversation", params=params).json()
            message = next((m for m in view["messages"] if m["messageUID"] == uid), None)
            pending = message is None or any(
                d["status"] == "pending" for d in message.get("deliveries", [])
            )
            if not pending:
                return view
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_SECONDS)


def _dify_count(
    app: DesiredApp, bot_id: str, sender: str, view: dict[str, Any] | None, env: Mapping[str, str]
) -> int | None:
    """The messages Dify recorded in the conversation the emulator keeps for ``sender`` and
    the bot, read through Dify's own ``GET /messages`` with the bot's Dify key, at the
    address the emulator's Dify calls go (the local rule); ``None`` when there is none."""
    session = (view or {}).get("difyConversation")
    integration = _chat_integration(app, bot_id)
    if not session or integration is None or integration.auth is None:
        return None
    base = DifyRoute(view.get("difyStandIn") if view else None).target(integration.callbackUrl)
    if base is None:
        return None
    try:
        with DifyClient(base, resolve(integration.auth.apiKey, env), max_attempts=1) as client:
            return client.message_count(sender, str(session["conversationId"]))
    except ProvisionerError:
        return None  # the reply is shown already; the count is only a help


def _chat_integration(app: DesiredApp, bot_id: str) -> Integration | None:
    bot = next(bot for bot in app.bots if bot.userId == bot_id)
    return next(
        (
            each
            for each in bot.integrations
            if each.enabled and each.type in ("dify_chat", "dify_chatflow")
        ),
        None,
    )


def _outcome(bot_id: str, sender: str, uid: str, view: dict[str, Any] | None) -> Conversed:
    if view is None:
        return Conversed(bot_id, sender, uid, on_emulator=True, timed_out=True)
    messages = view["messages"]
    [message] = [m for m in messages if m["messageUID"] == uid]
    # the replies are the bot's text messages (assumption 20 of docs/emulator.md)
    replies = tuple(
        message_text(TEXT_MESSAGE, m["content"]) for m in messages if m.get("replyTo") == uid
    )
    deliveries = tuple(Delivery(**d) for d in message.get("deliveries", []))
    return Conversed(bot_id, sender, uid, True, replies, deliveries)
