"""apply/run.py against the emulator over loopback: the one apply skeleton that `apply` and
`github apply` run, shown through a printer that records instead of printing.

What each command prints from these calls is pinned in test_cli_apply.py and
test_cli_github.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.apply.run import ApplyRun, ReviewRule, apply_apps
from provisioner.apply.session import Session
from provisioner.apply.verdicts import Verdict
from provisioner.emulator import EmulatorServer
from provisioner.errors import PlanError, ProvisionerError
from provisioner.exit_codes import EXIT_BLOCKED
from provisioner.plan import Plan
from provisioner.workspace import load_each
from tests import test_apply_session
from tests.apply_support import ENV, Workspace, live_bots, write_calls

ws = test_apply_session.ws
"""The fixture: app demo with two bots, on the emulator."""


class Recorder:
    """A printer (:class:`provisioner.apply.run.Printer`) that keeps what it is shown."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.changes: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    @contextmanager
    def planning(self, session: Session) -> Iterator[None]:
        self.events.append(("planning", [run.app.name for run in session.runs]))
        yield
        self.events.append(("planned",))

    def plans(self, docs: Sequence[Mapping[str, Any]]) -> None:
        self.events.append(("plans", [doc["app"] for doc in docs]))

    def refused(self, app: str, error: ProvisionerError) -> None:
        self.events.append(("refused", app, error.message))

    def progress(self, app: str, result: ChangeResult) -> None:
        with self._lock:
            self.changes.append((app, result.user_id, result.outcome))

    def summary(self, result: ApplyResult) -> None:
        self.events.append(("summary", result.app, result.counts["applied"]))


def run(ws: Workspace, rule: ReviewRule, *names: str) -> tuple[ApplyRun, Recorder]:
    shown = Recorder()
    loaded = load_each(list(names), ws.root / "bots", env=ENV)
    applied = apply_apps(loaded, ENV, rule, shown, refresh=True, allow_empty=False, concurrency=2)
    return applied, shown


def test_every_step_is_shown_in_order_and_one_refusal_stops_no_other_app(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app("second", key_var="SECOND_KEY", secret_var="SECOND_SECRET")
    ws.bot("solo-bot", app="second")
    (ws.app("broken") / "bad.yaml").write_text("userId: [\n", encoding="utf-8")
    done, shown = run(ws, ReviewRule(), "second", "broken", "demo")
    assert shown.events == [
        ("planning", ["second", "demo"]),
        ("planned",),
        ("plans", ["demo"]),
        ("refused", "second", "no credentials to refresh from the API: SECOND_KEY, SECOND_SECRET"),
        (
            "refused",
            "broken",
            "the manifests have 1 error:\n  bots/broken/bad.yaml:2:1: invalid YAML: did not"
            " find expected node content (while parsing a flow node)",
        ),
        ("summary", "demo", 2),
    ]
    assert sorted(shown.changes) == [
        ("demo", "assistant-bot", "applied"),
        ("demo", "helper-bot", "applied"),
    ]
    assert (done.code, done.closing) == (1, None)
    assert list(done.verdicts) == ["second", "broken", "demo"]
    assert [doc["app"] for doc in done.docs] == ["demo"]
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]
    assert capsys.readouterr() == ("", "")


def test_the_rule_refuses_a_plan_that_is_not_the_reviewed_one(
    ws: Workspace, server: EmulatorServer
) -> None:
    def review(plan: Plan) -> PlanError | None:
        return PlanError(f"the plan for app {plan.app} is not the reviewed one")

    done, shown = run(ws, ReviewRule(review), "demo")
    assert shown.events[2:] == [
        ("plans", ["demo"]),
        ("refused", "demo", "the plan for app demo is not the reviewed one"),
    ]
    assert done.code == 1
    assert write_calls(server) == 0


def test_without_approval_no_app_makes_a_call(ws: Workspace, server: EmulatorServer) -> None:
    asked: list[list[str]] = []

    def approve(verdicts: Mapping[str, Verdict]) -> bool:
        asked.append([name for name, verdict in verdicts.items() if verdict.ready])
        return False

    done, shown = run(ws, ReviewRule(approve=approve), "demo")
    assert asked == [["demo"]]
    assert (done.code, shown.changes, write_calls(server)) == (0, [], 0)


def test_the_writes_carry_the_reviewed_plan_id(ws: Workspace) -> None:
    run(ws, ReviewRule(carries={"demo": "reviewed-plan-id"}), "demo")
    assert ws.state().last_plan == "reviewed-plan-id"


def test_a_blocked_plan_is_refused_with_the_safety_rule(
    ws: Workspace, server: EmulatorServer
) -> None:
    run(ws, ReviewRule(), "demo")
    ws.remove_bot("assistant-bot")
    ws.remove_bot("helper-bot")
    done, shown = run(ws, ReviewRule(), "demo")
    assert shown.events[3] == (
        "refused",
        "demo",
        "the plan for app demo is blocked: the plan deletes every managed bot of app demo"
        " (2); pass --allow-empty if that is intended",
    )
    assert done.code == EXIT_BLOCKED
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]
