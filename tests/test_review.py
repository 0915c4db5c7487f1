"""review.py: the plan file (`plan --out`, `apply --plan`) and the reviewed-id check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.apply.session import plan_app
from provisioner.errors import PlanError
from provisioner.plan.review import check_reviewed, plans_document, read_plan_file
from provisioner.state.model import RecordedApp
from provisioner.workspace import load_apps
from tests.test_workspace import ENV, write_app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plan_file_round_trip_and_errors(tmp_path: Path, workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    plan = plan_app(app, ENV, RecordedApp.fresh("demo"), None, allow_empty=False)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plans_document([plan])), encoding="utf-8")
    assert read_plan_file(path) == {"demo": plan.id}
    with pytest.raises(PlanError, match="no plan file"):
        read_plan_file(tmp_path / "missing.json")
    path.write_text("{", encoding="utf-8")
    with pytest.raises(PlanError, match="not a plan file"):
        read_plan_file(path)
    path.write_text('{"format_version": 9, "plans": []}', encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        read_plan_file(path)
    assert caught.value.message == f"{path}: not a plan file of format_version 1"


def test_a_plan_file_edited_after_it_was_made_is_refused(tmp_path: Path, workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    plan = plan_app(app, ENV, RecordedApp.fresh("demo"), None, allow_empty=False)
    document = plans_document([plan])
    document["plans"][0]["changes"] = []  # "no changes", with the id of 1 create kept
    document["plans"][0]["counts"]["create"] = 0
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        read_plan_file(path)
    assert caught.value.message == (
        f"{path}: the plan for app demo does not match its id {plan.id}: the file was edited"
        " after `provisioner plan --out` wrote it"
    )
    assert caught.value.hint == (
        "re-run `provisioner plan --out FILE`, review that plan, and apply it unedited"
    )
    document["plans"][0] = {"app": "demo", "id": plan.id}  # no content at all
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(PlanError, match="does not match its id"):
        read_plan_file(path)


def test_a_plan_file_with_one_app_twice_is_refused(tmp_path: Path, workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    plan = plan_app(app, ENV, RecordedApp.fresh("demo"), None, allow_empty=False)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plans_document([plan, plan])), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        read_plan_file(path)
    assert caught.value.message == f"{path}: app demo has two plans (the second is plan 2)"


def test_a_huge_or_deep_plan_file_is_refused_cleanly(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(PlanError, match="not a plan file"):
        read_plan_file(deep)
    huge = tmp_path / "zero.json"
    huge.symlink_to("/dev/zero")
    with pytest.raises(PlanError) as caught:
        read_plan_file(huge)
    assert caught.value.message == f"{huge}: larger than 64 MiB; not a plan file"


def test_check_reviewed_says_why_a_plan_is_not_the_reviewed_one(workdir: Path) -> None:
    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    plan = plan_app(app, ENV, RecordedApp.fresh("demo"), None, allow_empty=False)
    assert check_reviewed(plan, {"demo": plan.id}, None) is None
    missing = check_reviewed(plan, {}, Path("plan.json"))
    assert missing is not None
    assert missing.message == "no reviewed plan id for app demo in plan.json"
    other = check_reviewed(plan, {"demo": "abc"}, None)
    assert other is not None and other.message == (
        f"the plan for app demo is not the reviewed one: reviewed plan id abc, current plan id"
        f" {plan.id}"
    )
