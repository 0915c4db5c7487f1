"""A canary secret never leaks: the app secret and the Dify keys are set to distinctive
strings, then plan and apply run through every output format, --debug, failures (refused
credentials, 5xx on writes, dropped connections, a stale plan) and Ctrl-C-free fault paths.
No stdout, stderr, log record, plan file, state file or lock file may contain a canary.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from tests.apply_support import (
    APP_KEY,
    FAST_RETRIES,
    Workspace,
    enter_workspace,
    live_bots,
    subprocess_env,
)

SECRET_CANARY = "CANARY-app-secret-7f3a9c41"
DIFY_CANARY = "CANARY-dify-key-2b8e6d05"
OTHER_DIFY_CANARY = "CANARY-dify-key-rotated-91c4"
WRONG_SECRET_CANARY = "CANARY-wrong-secret-44d1e0"
CANARIES = (SECRET_CANARY, DIFY_CANARY, OTHER_DIFY_CANARY, WRONG_SECRET_CANARY)
CANARY_ENV = {
    "RC_KEY": APP_KEY,
    "RC_SECRET": SECRET_CANARY,
    "DIFY_KEY": DIFY_CANARY,
    "DIFY_OTHER": OTHER_DIFY_CANARY,
}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: SECRET_CANARY}) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, CANARY_ENV)
    workspace.bot("assistant-bot")
    workspace.bot("helper-bot", dify_var="DIFY_OTHER")
    return workspace


class Outputs:
    """Everything the runs printed, with their exit codes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: list[str] = []

    def run(self, *args: str, env: dict[str, str] | None = None) -> int:
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", *args],
            cwd=self.root,
            env=subprocess_env(self.root, {**CANARY_ENV, **FAST_RETRIES, **(env or {})}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.texts += [result.stdout, result.stderr]
        return result.returncode


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked into {where}"


def test_no_canary_in_any_output_stream_file_or_log(
    ws: Workspace,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = Outputs(ws.root)
    assert out.run("--debug", "plan") == 0
    assert out.run("--debug", "plan", "--format", "json") == 0
    assert out.run("--debug", "plan", "--format", "markdown", "--out", "plan.json") == 0
    assert out.run("--debug", "apply", "--format", "json", "--plan", "plan.json") == 0
    assert out.run("--debug", "plan", "--format", "json") == 0  # no changes now

    ws.bot("assistant-bot", name="Renamed")
    assert out.run("--debug", "apply", "--plan", "plan.json") == 1  # stale plan
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh") == 0

    # Failures: refused credentials (the wrong secret is a canary too), 5xx on every write,
    # commit-then-drop, and an adoption of a bot that lost its record.
    ws.bot("helper-bot", name="Renamed too", dify_var="DIFY_OTHER")
    wrong = {"RC_SECRET": WRONG_SECRET_CANARY}
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh", env=wrong) == 4
    assert out.run("--debug", "apply", "--auto-approve", env=wrong) == 1
    server.set_faults(error_rate=1.0)  # every read back retries (10 ms backoff): one run only
    assert out.run("--debug", "apply", "--auto-approve", "--no-refresh") == 4
    server.set_faults(error_rate=0.0, drop_after_commit=1.0)
    assert out.run("--debug", "apply", "--auto-approve") == 0
    server.set_faults(drop_after_commit=0.0)
    ws.state_path().unlink()
    assert out.run("--debug", "plan", "--format", "markdown") == 0
    assert out.run("--debug", "apply", "--auto-approve") == 0

    # In-process too, with every log record captured at DEBUG.
    caplog.set_level(logging.DEBUG)
    ws.bot("assistant-bot", name="Renamed again")
    assert main(["--debug", "apply", "--auto-approve", "--format", "json"]) == 0
    assert main(["--debug", "plan", "--format", "markdown"]) == 0
    captured = capsys.readouterr()
    out.texts += [captured.out, captured.err, caplog.text]
    assert live_bots(server)["assistant-bot"].name == "Renamed again"

    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
    files = [path for path in ws.root.rglob("*") if path.is_file()]
    assert ws.root / "plan.json" in files and ws.state_path() in files
    for path in files:
        assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))
    joined = "".join(out.texts)
    assert "HTTP 401, code 1004" in joined  # the failure paths really ran
    assert "settled by reading back" in joined


def test_no_canary_in_export_api_or_sign_outputs(ws: Workspace, server: EmulatorServer) -> None:
    """export (without --secrets-to), api and sign APP over bots holding canary Dify keys."""
    out = Outputs(ws.root)
    assert out.run("apply", "--auto-approve") == 0
    assert out.run("--debug", "export", "demo", "--merge") == 0
    export = ["--debug", "export", "copy", "--endpoint", server.url]
    assert out.run(*export, "--app-key-var", "RC_KEY", "--app-secret-var", "RC_SECRET") == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{}") == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/get.json", '{"userIds": ["helper-bot"]}') == 0
    assert out.run("--debug", "api", "demo", "/v3/bot/delete.json", '{"userId": "nobody"}') == 1
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{oops") == 1
    assert out.run("--debug", "sign", "demo") == 0
    assert out.run("--debug", "sign", "demo", "--format", "curl", "/v3/bot/query.json") == 0
    wrong = {"RC_SECRET": WRONG_SECRET_CANARY}
    assert out.run("--debug", "api", "demo", "/v3/bot/query.json", "{}", env=wrong) == 1
    assert out.run("--debug", "export", "demo", "--merge", env=wrong) == 1
    for number, text in enumerate(out.texts):
        assert_no_canary(text, f"output stream #{number}")
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert_no_canary(path.read_text(encoding="utf-8", errors="replace"), str(path))
    assert (ws.root / "bots/copy/assistant-bot.yaml").is_file()
    joined = "".join(out.texts)
    assert "Signature: " in joined and "(sensitive)" in joined
