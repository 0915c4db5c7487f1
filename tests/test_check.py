"""check.py: the environment is read once per app, before the checks call Dify (the CLI's
end-to-end cases are in test_cli_check.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from provisioner.check import CheckSettings, check_apps
from provisioner.workspace import load_apps
from tests.dify_support import CheckWorkspace


class WatchedEnv(Mapping[str, str]):
    """An environment that records which threads read which variables."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.reads: list[tuple[str, str]] = []

    def __getitem__(self, name: str) -> str:
        self.reads.append((threading.current_thread().name, name))
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def test_the_checks_read_no_environment_once_they_call_dify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = CheckWorkspace(tmp_path)
    workspace.app(extra="emulator:\n  dify:\n    - {apiKey: k, mode: chat}\n")
    (tmp_path / "bots" / "demo" / "b.yaml").write_text(
        "userId: b\nname: ${BOT_NAME}\ntype: Message AI\nprofileUrl: https://example.com/p.png\n"
        "integrations:\n"
        "  - {type: dify_chat, callbackUrl: 'https://api.dify.ai/v1', stream: false,"
        " auth: {apiKey: '${BOT_KEY}'}}\n",
        encoding="utf-8",
    )
    values = {"BOT_NAME": "Helper", "BOT_KEY": "k"}
    apps = load_apps(["demo"], Path("bots"), env=values)
    env = WatchedEnv(values)
    run = check_apps(apps, env, CheckSettings(converse=True), base_dir=tmp_path)
    assert not run.failed and not run.app_errors
    [checked] = run.checked
    assert checked.conversation is not None and len(checked.conversation.exchanges) == 2
    assert checked.conversation.exchanges[0].reply.answer.startswith("Dify Chatbot app (turn 1)")
    assert {name for _, name in env.reads} == {"BOT_NAME", "BOT_KEY"}
    assert {thread for thread, _ in env.reads} == {threading.current_thread().name}
