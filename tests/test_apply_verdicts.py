"""apply/verdicts.py: deciding per app, and the outcome of a run over several apps."""

from __future__ import annotations

from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.apply.session import Applied, Planned
from provisioner.apply.verdicts import decide, run_outcome
from provisioner.errors import ConfigError, PlanError, UnsafePlanError
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.state.model import RecordedApp
from tests.test_plan import ENV, make_app, make_bot, record


def plan_of(app: DesiredApp, state: RecordedApp | None = None) -> Plan:
    return make_plan(app, state or RecordedApp.fresh(app.name), ENV)


def test_each_app_is_decided_on_its_own() -> None:
    creating = make_app(make_bot("a"), name="creating")
    emptied = make_app(name="emptied")
    same = make_app(make_bot("b"), name="same")
    planned = [
        Planned(creating, plan=plan_of(creating)),
        Planned(emptied, plan=plan_of(emptied, record(make_app(make_bot("c"), name="emptied")))),
        Planned(same, plan=plan_of(same, record(same))),
        Planned(make_app(name="broken"), error=ConfigError("no credentials")),
    ]
    load_errors = {"unloadable": ConfigError("the manifests have 1 error")}
    names = ["creating", "emptied", "same", "broken", "unloadable"]
    verdicts = decide(names, load_errors, planned)
    assert [(name, v.ready, type(v.refusal).__name__) for name, v in verdicts.items()] == [
        ("creating", True, "NoneType"),
        ("emptied", False, "UnsafePlanError"),
        ("same", False, "NoneType"),
        ("broken", False, "ConfigError"),
        ("unloadable", False, "ConfigError"),
    ]
    refused = decide(["creating"], {}, planned[:1], lambda plan: PlanError("not reviewed"))
    assert isinstance(refused["creating"].refusal, PlanError) and not refused["creating"].ready


def test_the_run_outcome_is_the_worst_app_outcome_with_its_closing_line() -> None:
    app = make_app(make_bot("a"))
    plan = plan_of(app)
    verdicts = decide(["demo"], {}, [Planned(app, plan=plan)])
    applied = [
        Applied(
            "demo", result=ApplyResult("demo", plan.id, (ChangeResult("create", "a", "applied"),))
        )
    ]
    assert run_outcome(verdicts, applied, None).code == 0
    partial = [
        Applied(
            "demo", result=ApplyResult("demo", plan.id, (ChangeResult("create", "a", "failed"),))
        )
    ]
    outcome = run_outcome(verdicts, partial, None)
    assert outcome.code == 4 and outcome.closing is not None
    assert outcome.closing.message == "apply incomplete: 1 failed, 0 not attempted"
    assert run_outcome(verdicts, partial, "terminated").code == 143
    blocked = {"x": decide(["x"], {"x": UnsafePlanError("blocked")}, [])["x"]}
    assert run_outcome(blocked, [], None).code == 3
