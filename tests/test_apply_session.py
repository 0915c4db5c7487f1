"""ApplySession against the emulator over loopback: it plans and applies every app in its own
thread and prints nothing; errors and progress come back to the caller.

The CLI's output built from these is pinned in test_cli_apply.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply import ChangeResult
from provisioner.apply_session import ApplySession
from provisioner.emulator import EmulatorServer
from provisioner.errors import ConfigError
from provisioner.models import DesiredApp
from provisioner.state import FileBackend
from provisioner.workspace import load_apps
from tests.apply_support import ENV, Workspace, enter_workspace, live_bots, write_calls


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, {})
    workspace.bot("assistant-bot", name="Assistant")
    workspace.bot("helper-bot", name="Helper")
    return workspace


def apps(ws: Workspace, *names: str) -> list[DesiredApp]:
    return load_apps(list(names), ws.root / "bots", env=ENV)


def session(ws: Workspace, *names: str) -> ApplySession:
    return ApplySession(apps(ws, *names), ENV, refresh=True, allow_empty=False, concurrency=2)


def test_planning_errors_are_returned_in_app_order_not_printed(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("second", "third"):
        ws.app(name, key_var=f"{name.upper()}_KEY", secret_var=f"{name.upper()}_SECRET")
        ws.bot("solo-bot", app=name)
    with session(ws, "third", "demo", "second") as run:
        plans, errors = run.plans()
    assert [plan.app for plan in plans] == ["demo"]
    assert [(name, type(error)) for name, error in errors] == [
        ("third", ConfigError),
        ("second", ConfigError),
    ]
    assert errors[0][1].message == (
        "no credentials to refresh from the API: THIRD_KEY, THIRD_SECRET"
    )
    assert capsys.readouterr() == ("", "")
    assert write_calls(server) == 0


def test_apply_reports_each_change_to_the_callback_and_returns_the_results(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_result(app: str, result: ChangeResult) -> None:
        seen.append((app, result.user_id, result.outcome))

    with session(ws, "demo") as run:
        plans, errors = run.plans()
        assert errors == []
        assert [len(plan.changes) for plan in plans] == [2]
        results = run.apply(on_result)
    assert [(result.app, result.counts["applied"]) for result in results] == [("demo", 2)]
    assert sorted(seen) == [
        ("demo", "assistant-bot", "applied"),
        ("demo", "helper-bot", "applied"),
    ]
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]
    assert capsys.readouterr() == ("", "")


def test_leaving_without_apply_makes_no_call_and_releases_the_lock(
    ws: Workspace, server: EmulatorServer
) -> None:
    with session(ws, "demo") as run:
        plans, _ = run.plans()
        assert not plans[0].is_empty
    assert write_calls(server) == 0
    with FileBackend(ws.state_path(), "demo").lock("test"):
        pass


def test_an_app_told_not_to_go_returns_none_after_planning_and_makes_no_call(
    ws: Workspace, server: EmulatorServer
) -> None:
    unopened = session(ws, "demo")
    app_run = unopened.runs[0]
    app_run.decide(False)
    try:
        assert app_run() is None
    finally:
        unopened.__exit__(None, None, None)
    assert len(app_run.planned.result().changes) == 2
    assert write_calls(server) == 0
    with FileBackend(ws.state_path(), "demo").lock("test"):
        pass
