"""apply/session.py against the emulator over loopback: every app plans and applies in its own
thread, nothing is printed, and one app's failure never stops another.

The CLI's output built from these is pinned in test_cli_apply.py and test_cli_plan.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from provisioner.apply.results import ChangeResult
from provisioner.apply.session import AppRun, Session, plan_app, plan_apps
from provisioner.connect import connect
from provisioner.emulator import EmulatorServer
from provisioner.errors import ConfigError, LockedError
from provisioner.models import DesiredApp
from provisioner.plan.canonical import api_payload, canonical_spec
from provisioner.rongcloud.models import BotPayload
from provisioner.state import RecordedBot
from provisioner.state.backends import backend_for
from provisioner.state.file.backend import FileBackend
from provisioner.workspace import load_apps
from tests.apply_support import ENV, Workspace, enter_workspace, live_bots, write_calls
from tests.test_workspace import ENV as WS_ENV
from tests.test_workspace import write_app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, {})
    workspace.bot("assistant-bot", name="Assistant")
    workspace.bot("helper-bot", name="Helper")
    return workspace


def apps(ws: Workspace, *names: str) -> list[DesiredApp]:
    return load_apps(list(names), ws.root / "bots", env=ENV)


def session(ws: Workspace, *names: str) -> Session:
    return Session(apps(ws, *names), ENV, refresh=True, allow_empty=False, concurrency=2)


def without_credentials(ws: Workspace, *names: str) -> None:
    for name in names:
        ws.app(name, key_var=f"{name.upper()}_KEY", secret_var=f"{name.upper()}_SECRET")
        ws.bot("solo-bot", app=name)


def test_planning_errors_are_returned_in_app_order_not_printed(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    without_credentials(ws, "second", "third")
    with session(ws, "third", "demo", "second") as run:
        planned = run.plans()
    assert [each.app.name for each in planned] == ["third", "demo", "second"]
    assert [each.plan is not None for each in planned] == [False, True, False]
    assert [type(each.error) for each in planned] == [ConfigError, type(None), ConfigError]
    assert planned[0].error is not None
    assert planned[0].error.message == (
        "no credentials to refresh from the API: THIRD_KEY, THIRD_SECRET"
    )
    assert capsys.readouterr() == ("", "")
    assert write_calls(server) == 0


def test_apply_reports_each_change_to_the_callback_and_returns_the_results(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def on_result(app: str, result: ChangeResult) -> None:
        with lock:
            seen.append((app, result.user_id, result.outcome))

    with session(ws, "demo") as run:
        (planned,) = run.plans()
        assert planned.plan is not None and len(planned.plan.changes) == 2
        applied = run.apply(lambda name: True, on_result)
    assert [(each.app, each.result.counts["applied"]) for each in applied if each.result] == [
        ("demo", 2)
    ]
    assert sorted(seen) == [
        ("demo", "assistant-bot", "applied"),
        ("demo", "helper-bot", "applied"),
    ]
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]
    assert capsys.readouterr() == ("", "")


def test_an_app_that_cannot_plan_does_not_stop_the_others(
    ws: Workspace, server: EmulatorServer
) -> None:
    without_credentials(ws, "second")
    with session(ws, "second", "demo") as run:
        planned = run.plans()
        applied = run.apply(lambda name: True, lambda app, result: None)
    assert planned[0].error is not None
    assert [(each.app, each.result is not None, each.error) for each in applied] == [
        ("second", False, None),
        ("demo", True, None),
    ]
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


def test_only_the_apps_told_to_go_apply(ws: Workspace, server: EmulatorServer) -> None:
    ws.app("other")
    ws.bot("other-bot", app="other")
    with session(ws, "demo", "other") as run:
        run.plans()
        applied = run.apply(lambda name: name == "other", lambda app, result: None)
    assert [(each.app, each.result is not None) for each in applied] == [
        ("demo", False),
        ("other", True),
    ]
    assert sorted(live_bots(server)) == ["other-bot"]


def test_leaving_without_apply_makes_no_call_and_releases_the_lock(
    ws: Workspace, server: EmulatorServer
) -> None:
    with session(ws, "demo") as run:
        (planned,) = run.plans()
        assert planned.plan is not None and not planned.plan.is_empty
    assert write_calls(server) == 0
    with FileBackend(ws.state_path(), "demo").lock("test"):
        pass


def test_an_apply_session_holds_no_lock_between_its_plan_and_its_apply(
    ws: Workspace, server: EmulatorServer
) -> None:
    """A run over 1,000 apps cannot hold 1,000 lock files: the lock is taken to plan and again
    to apply, and a state written in between refuses the plan before any call."""
    with session(ws, "demo") as run:
        (planned,) = run.plans()
        assert planned.plan is not None
        backend = FileBackend(ws.state_path(), "demo")
        with backend.lock("another run"):
            backend.write(backend.read().with_bot("someone-else", None))
        (applied,) = run.apply(lambda name: True, lambda app, result: None)
    assert applied.result is not None
    first, second = applied.result.results
    assert (first.outcome, second.outcome) == ("failed", "not_attempted")
    assert first.error is not None
    assert first.error.message == (
        "the plan for app demo was made against state serial 0, but the state is now at serial 1"
    )
    assert write_calls(server) == 0


def test_an_app_locked_by_another_run_is_refused_while_planning(
    ws: Workspace, server: EmulatorServer
) -> None:
    with FileBackend(ws.state_path(), "demo").lock("someone applying"), session(ws, "demo") as run:
        (planned,) = run.plans()
    assert isinstance(planned.error, LockedError)
    assert write_calls(server) == 0


@pytest.mark.parametrize("when", ["before the plan", "as the plan is set", "after the plan"])
def test_the_apply_job_is_queued_once_whenever_the_decision_comes(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The plan job and the main thread's decision race; whichever comes last queues the apply
    job. A decision landing just after the plan is set, before the plan job looks, queued it
    twice: the second job was refused by the first one's lock (seen with 30 apps on git state)."""
    with session(ws, "demo") as owner:
        (planned,) = owner.plans()
        run = AppRun(planned.app, owner)
        queued: list[str] = []
        monkeypatch.setattr(run, "_plan", lambda: planned.plan)
        monkeypatch.setattr(run, "_after_plan", lambda: queued.append("apply job"))
        if when == "as the plan is set":
            set_plan = run.planned.set_result

            def set_then_decide(plan: object) -> None:
                set_plan(planned.plan)
                run.decide(True)

            monkeypatch.setattr(run.planned, "set_result", set_then_decide)
        if when == "before the plan":
            run.decide(True)
        run._plan_job()
        if when == "after the plan":
            run.decide(True)
        run.decide(False)  # a second decision changes nothing
    assert queued == ["apply job"]


def test_plan_apps_takes_no_lock_and_writes_nothing(ws: Workspace, server: EmulatorServer) -> None:
    with FileBackend(ws.state_path(), "demo").lock("someone applying"):
        (planned,) = plan_apps(
            apps(ws, "demo"), ENV, refresh=True, allow_empty=False, concurrency=2
        )
    assert planned.plan is not None and planned.plan.counts["create"] == 2
    assert not ws.state_path().exists()
    assert write_calls(server) == 0


def test_plan_apps_reads_one_committed_version(ws: Workspace, server: EmulatorServer) -> None:
    with session(ws, "demo") as run:
        run.plans()
        run.apply(lambda name: True, lambda app, result: None)
    recorded = json.loads(ws.state_path().read_text("utf-8"))
    (planned,) = plan_apps(apps(ws, "demo"), ENV, refresh=False, allow_empty=False, concurrency=1)
    assert planned.plan is not None and planned.plan.is_empty
    assert (planned.plan.lineage, planned.plan.serial) == (
        recorded["lineage"],
        recorded["serial"],
    )


class FakeClient:
    """Just enough of RongCloudClient for plan_app."""

    def __init__(self, bots: list[BotPayload]) -> None:
        self.bots = bots
        self.calls = 0

    def query_bots(self) -> list[BotPayload]:
        self.calls += 1
        return self.bots


def test_plan_app_offline_and_with_refresh(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=WS_ENV)
    state = backend_for(app).read()
    offline = plan_app(app, WS_ENV, state, None, allow_empty=False)
    assert [c.action for c in offline.changes] == ["create"]
    client = FakeClient([api_payload(app.bots[0], WS_ENV), BotPayload(userId="manual")])
    refreshed = plan_app(app, WS_ENV, state, client, allow_empty=False)
    assert [c.action for c in refreshed.changes] == ["adopt"]
    assert refreshed.unmanaged == ("manual",) and client.calls == 1


def test_round_trip_on_the_emulator_plans_to_nothing(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=WS_ENV)
    backend = backend_for(app)
    with connect(app, WS_ENV) as client:
        state = backend.read()
        plan = plan_app(app, WS_ENV, state, client, allow_empty=False)
        assert [c.action for c in plan.changes] == ["create"]
        for bot in app.bots:
            client.create_bot(api_payload(bot, WS_ENV))
            spec = canonical_spec(bot, WS_ENV, state.salt)
            state = state.with_bot(bot.userId, RecordedBot(spec))
        backend.write(state, expected_serial=0)
        again = plan_app(app, WS_ENV, backend.read(), client, allow_empty=False)
    assert again.is_empty and again.drift == () and again.unmanaged == ()
    assert (workdir / ".provisioner" / "state" / "demo.json").is_file()
