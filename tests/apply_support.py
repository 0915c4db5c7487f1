"""Shared helpers for the apply end-to-end tests: a workspace of app folders that talks to an
EmulatorServer over loopback, with credentials and Dify keys taken from ${VARS}."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provisioner.emulator import EmulatorServer
from provisioner.rongcloud import BotPayload, RongCloudClient
from provisioner.state import RecordedApp

APP_KEY = "e2e-app-key"
APP_SECRET = "e2e-app-secret-0000"
DIFY_KEY = "dify-e2e-key-1111"
ENV = {"RC_KEY": APP_KEY, "RC_SECRET": APP_SECRET, "DIFY_KEY": DIFY_KEY}
FAST_RETRIES = {"PROVISIONER_RETRY_BACKOFF": "0.01"}
"""Environment that makes the CLI's client retry after ~10 ms instead of ~0.5 s."""


class Workspace:
    """A repository-like folder: ``bots/<app>/`` manifests and ``.provisioner/state``."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def app(
        self,
        name: str = "demo",
        *,
        key_var: str = "RC_KEY",
        secret_var: str = "RC_SECRET",
        extra: str = "",
    ) -> Path:
        folder = self.root / "bots" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.yaml").write_text(
            f"endpoint: {self.url}\nappKey: ${{{key_var}}}\nappSecret: ${{{secret_var}}}\n" + extra,
            encoding="utf-8",
        )
        return folder

    def bot(
        self,
        user_id: str,
        *,
        app: str = "demo",
        name: str = "Helper",
        protect: bool = False,
        dify_var: str = "DIFY_KEY",
    ) -> Path:
        path = self.root / "bots" / app / f"{user_id}.yaml"
        path.write_text(
            f"userId: {user_id}\n"
            f"name: {name}\n"
            "type: Message AI\n"
            "profileUrl: https://example.com/robot.png\n"
            'metadata: {version: "1"}\n'
            f"protect: {'true' if protect else 'false'}\n"
            "integrations:\n"
            "  - type: webhook\n"
            "    callbackUrl: https://hooks.example.com/rongcloud\n"
            "    objectNames: [RC:TxtMsg]\n"
            '    events: ["message:private"]\n'
            "  - type: dify_chatflow\n"
            "    callbackUrl: https://api.dify.ai/v1\n"
            f'    auth: {{apiKey: "${{{dify_var}}}"}}\n',
            encoding="utf-8",
        )
        return path

    def remove_bot(self, user_id: str, *, app: str = "demo") -> None:
        (self.root / "bots" / app / f"{user_id}.yaml").unlink()

    def state_path(self, app: str = "demo") -> Path:
        return self.root / ".provisioner" / "state" / f"{app}.json"

    def state(self, app: str = "demo") -> RecordedApp:
        """The recorded state; it must always parse."""
        path = self.state_path(app)
        return RecordedApp.from_data(json.loads(path.read_text("utf-8")), where=str(path))


def enter_workspace(
    root: Path, url: str, monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]
) -> Workspace:
    """A workspace in ``root`` with its ``bots/demo/app.yaml`` for ``url``, made the working
    directory, with ``env`` set for the test."""
    monkeypatch.chdir(root)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    workspace = Workspace(root, url)
    workspace.app()
    return workspace


def client_for(server: EmulatorServer, app_key: str = APP_KEY) -> RongCloudClient:
    """A client that changes the emulator behind git's back."""
    return RongCloudClient(
        app_key=app_key, app_secret=server.apps[app_key], hosts=[server.url], backoff_base=0.01
    )


def live_bots(server: EmulatorServer, app_key: str = APP_KEY) -> dict[str, BotPayload]:
    with client_for(server, app_key) as client:
        return {bot.userId: bot for bot in client.query_bots()}


def calls(server: EmulatorServer, path: str, app_key: str = APP_KEY, *, kind: str = "calls") -> int:
    """Calls to ``/v3/bot/<path>.json`` for ``app_key`` so far: ``kind`` is a counter of the
    emulator's stats (``calls`` accepted, ``committed`` writes, ``disconnected``...)."""
    counts: Mapping[str, int] = server.stats()[kind]
    return counts.get(f"{app_key} /v3/bot/{path}.json", 0)


def write_calls(server: EmulatorServer, app_key: str = APP_KEY, *, kind: str = "calls") -> int:
    """Create, update and delete calls of ``kind`` (see :func:`calls`)."""
    return sum(calls(server, path, app_key, kind=kind) for path in ("create", "update", "delete"))


@contextmanager
def emulator(**kwargs: Any) -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}, **kwargs) as server:
        yield server


def subprocess_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ``python -m provisioner`` run in ``root`` (no colour, no TTY tricks)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVISIONER")}
    env.update(ENV)
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0) -> bool:
    """Poll ``condition`` every 2 ms; False if it never held (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False
