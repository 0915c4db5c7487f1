"""Shared helpers for the Dify tests: a stand-in with one app per outcome, a workspace whose
bots point at it, and a small misbehaving server (garbage answers, hangs) on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from provisioner.emulator.dify.apps import DifyApp, DifyInput
from provisioner.emulator.dify.server import DifyStandIn
from provisioner.emulator.serving import ThreadedServer

KEYS = {
    "DIFY_CHAT": "app-chat-0001",
    "DIFY_FLOW": "app-flow-0002",
    "DIFY_TEXT": "app-text-0003",
    "DIFY_AGENT": "app-agent-0004",
    "DIFY_NEW_AGENT": "app-new-agent-0005",
    "DIFY_WORKFLOW": "app-workflow-0006",
    "DIFY_OFF": "app-off-0007",
    "DIFY_OLD": "app-old-0008",
    "DIFY_OLD_OFF": "app-old-off-0009",
    "DIFY_DRAFT": "app-draft-0010",
    "DIFY_FORM": "app-form-0011",
    "DIFY_TEXT_NO_QUERY": "app-text-no-query-0012",
    "DIFY_UNKNOWN": "app-unknown-key-0013",
    "DIFY_GONE": "app-gone-0014",
    "DIFY_SHORT_QUERY": "app-short-query-0015",
    "DIFY_NARROW": "app-narrow-0016",
}
"""Environment variable → key; ``DIFY_UNKNOWN`` is a key no stand-in app has."""

APPS = [
    DifyApp(KEYS["DIFY_CHAT"], "chat", name="Helper"),
    DifyApp(KEYS["DIFY_FLOW"], "advanced-chat", name="Flow"),
    DifyApp(KEYS["DIFY_TEXT"], "completion", name="Writer", inputs=(DifyInput("query"),)),
    DifyApp(KEYS["DIFY_AGENT"], "agent-chat", name="Agent"),
    DifyApp(KEYS["DIFY_NEW_AGENT"], "agent", name="New agent"),
    DifyApp(KEYS["DIFY_WORKFLOW"], "workflow", name="Pipeline"),
    DifyApp(KEYS["DIFY_OFF"], "chat", name="Off", enabled=False),
    DifyApp(KEYS["DIFY_OLD"], "chat", name="Old", legacy=True),
    DifyApp(KEYS["DIFY_OLD_OFF"], "chat", name="Old off", legacy=True, enabled=False),
    DifyApp(KEYS["DIFY_DRAFT"], "chat", name="Draft", published=False),
    DifyApp(
        KEYS["DIFY_FORM"],
        "advanced-chat",
        name="Form",
        inputs=(
            DifyInput("city"),
            DifyInput("data_fromUserId"),
            DifyInput("mood", required=False),
            DifyInput("level", kind="number"),
        ),
    ),
    DifyApp(KEYS["DIFY_TEXT_NO_QUERY"], "completion", name="No query"),
    DifyApp(KEYS["DIFY_GONE"], "chat", name="Gone", deleted=True),
    DifyApp(
        KEYS["DIFY_SHORT_QUERY"],
        "completion",
        name="Short",
        inputs=(DifyInput("query", max_length=48), DifyInput("data_content", kind="paragraph")),
    ),
    DifyApp(
        KEYS["DIFY_NARROW"],
        "chat",
        name="Narrow",
        inputs=(
            DifyInput("data_content", max_length=100),
            DifyInput("bot_name", max_length=3),
            DifyInput("data_channelType", kind="select", options=("GROUP",)),
            DifyInput("data_objectName", kind="select", options=("RC:TxtMsg",)),
            DifyInput("data_fromUserId", kind="select", options=("alice", "bob")),
            DifyInput("timestamp", required=False, kind="select", options=("soon",)),
            DifyInput("bot_type", kind="number"),
            DifyInput("wanted", required=False, kind="select", options=("x",)),
        ),
    ),
]

FAST = {"PROVISIONER_RETRY_BACKOFF": "0.01"}

# Where the bot file written by :meth:`CheckWorkspace.bot` puts each integration field.
INTEGRATION_LINE = 6
POSITIONS = {
    "": (6, 5),
    "type": (6, 11),
    "callbackUrl": (7, 18),
    "stream": (8, 13),
    "auth.apiKey": (9, 20),
}


def at(file: str, field: str = "") -> str:
    """``file:line:col: severity-less prefix`` of a finding at the integration's ``field``."""
    line, column = POSITIONS[field]
    return f"{file}:{line}:{column}"


class CheckWorkspace:
    """``bots/<app>/`` folders whose bots each have one Dify integration."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def app(self, name: str = "demo", *, endpoint: str = "local", extra: str = "") -> Path:
        folder = self.root / "bots" / name
        folder.mkdir(parents=True, exist_ok=True)
        settings = f"endpoint: {endpoint}\n"
        if endpoint != "local":
            settings += "appKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n"
        (folder / "app.yaml").write_text(settings + extra, encoding="utf-8")
        return folder

    def bot(
        self,
        user_id: str,
        *,
        kind: str,
        url: str,
        key_var: str,
        stream: bool = True,
        app: str = "demo",
    ) -> str:
        """Writes ``bots/<app>/<user_id>.yaml``; returns its display path."""
        path = self.root / "bots" / app / f"{user_id}.yaml"
        path.write_text(
            f"userId: {user_id}\n"
            "name: Helper\n"
            "type: Message AI\n"
            "profileUrl: https://example.com/robot.png\n"
            "integrations:\n"
            f"  - type: {kind}\n"
            f"    callbackUrl: {url}\n"
            f"    stream: {'true' if stream else 'false'}\n"
            f'    auth: {{apiKey: "${{{key_var}}}"}}\n',
            encoding="utf-8",
        )
        return f"bots/{app}/{user_id}.yaml"


def enter(root: Path, monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> CheckWorkspace:
    monkeypatch.chdir(root)
    for name, value in {**KEYS, **FAST, **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return CheckWorkspace(root)


@contextmanager
def stand_in() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as running:
        yield running


# --- a server that is not Dify ------------------------------------------------------------


class Misbehaving:
    """A loopback server answering ``/v1/*`` the way a broken proxy or another service
    would. ``behaviour`` per path: ``html``, ``list`` (a JSON list), ``huge`` (2 MiB),
    ``hang`` (never answers until stopped), ``trickle`` (headers, then a byte now and
    then, forever), ``envelope`` (a 500 in Dify's envelope), ``echo-key`` (a 401 quoting the
    Authorization header), ``json:<body>`` (200)."""

    def __init__(self, behaviour: Mapping[str, str]) -> None:
        self.behaviour = dict(behaviour)
        self.release = threading.Event()
        self.server = ThreadedServer(
            Starlette(routes=[Route("/v1/{path:path}", self._answer, methods=["GET", "POST"])]),
            host="127.0.0.1",
            port=0,
            thread_name="misbehaving-dify",
            what="the misbehaving server",
        )

    @property
    def api_base(self) -> str:
        return f"{self.server.url}/v1"

    async def _answer(self, request: Request) -> Response:
        kind = self.behaviour.get(request.path_params["path"], "html")
        if kind == "html":
            return Response("<html><body>Sign in</body></html>", media_type="text/html")
        if kind == "list":
            return Response("[1, 2]", media_type="application/json")
        if kind == "huge":
            return Response(b"{" + b" " * (2 * 1024 * 1024), media_type="application/json")
        if kind == "echo-key":  # a server that quotes the key back in its error
            said = request.headers.get("authorization", "")
            body = {"code": "unauthorized", "message": f"token {said} refused", "status": 401}
            return Response(json.dumps(body), 401, media_type="application/json")
        if kind == "envelope":
            body = {"code": "internal_server_error", "message": "boom", "status": 500}
            return Response(json.dumps(body), 500, media_type="application/json")
        if kind.startswith("json:"):
            return Response(kind[5:], media_type="application/json")
        if kind == "trickle":
            return StreamingResponse(self._trickle(), media_type="text/event-stream")
        await self._wait()
        return Response("too late")

    async def _wait(self) -> None:
        while not self.release.is_set():
            await asyncio.sleep(0.02)

    async def _trickle(self) -> AsyncIterator[str]:
        while not self.release.is_set():
            yield ": keep-alive\n"
            await asyncio.sleep(0.05)

    def __enter__(self) -> Misbehaving:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.server.stop()
