"""The JSON Schemas of the outputs (plan, drift, check): generated from the typed documents
where they are typed, shipped in the package, written by `provisioner schema`, and every real
output of the CLI validates against them (plan and `github plan --out`, drift, check)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from provisioner.cli import main
from provisioner.emulator.dify.server import DifyStandIn
from provisioner.export.documents import GENERATED, generated_schema_text
from provisioner.export.scaffold import OUTPUT_SCHEMA_NAMES, packaged_schema
from tests.dify_support import CheckWorkspace
from tests.github_fake import REPO_NAME
from tests.github_world import MERGE, SECRETS, World, open_pull
from tests.test_cli_check import check, dify, ws  # noqa: F401  (the fixtures)
from tests.test_cli_github_review import console_edit


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(packaged_schema(name)))


def valid(name: str, document: Any) -> None:
    errors = sorted(validator(name).iter_errors(document), key=lambda error: error.json_path)
    assert [f"{error.json_path}: {error.message}" for error in errors] == []


@pytest.mark.parametrize("name", GENERATED)
def test_the_shipped_schemas_are_generated_from_the_typed_documents(name: str) -> None:
    assert packaged_schema(name) == generated_schema_text(name), (
        f"regenerate: python -c 'from provisioner.export.documents import generated_schema_text"
        f' as g; open("provisioner/schemas/{name}.schema.json", "w").write(g("{name}"))\''
    )


@pytest.mark.parametrize("name", OUTPUT_SCHEMA_NAMES)
def test_each_is_a_draft_2020_12_schema_with_an_id(name: str) -> None:
    schema = json.loads(packaged_schema(name))
    Draft202012Validator.check_schema(schema)
    assert (
        schema["$id"] == f"https://rongcloud-bot-provisioner.github.io/schemas/{name}.schema.json"
    )
    assert schema["description"] and schema["additionalProperties"] is False


def test_a_wrong_plan_is_refused() -> None:
    wrong = {"format_version": 1, "plans": [{"app": "demo"}]}
    assert not validator("plan").is_valid(wrong)
    assert not validator("plan").is_valid({"format_version": 1, "plans": [], "extra": 1})


def test_schema_writes_the_output_schemas_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["schema", "--out", "out"]) == 0
    written = capsys.readouterr().out.splitlines()
    assert written[3:] == [f"written out/{name}.schema.json" for name in OUTPUT_SCHEMA_NAMES]
    for name in OUTPUT_SCHEMA_NAMES:
        assert (tmp_path / "out" / f"{name}.schema.json").read_text("utf-8") == packaged_schema(
            name
        )


def test_real_plans_and_drift_reports_validate(world: World) -> None:
    number = open_pull(world)
    out = world.tmp / "plan.json"
    assert world.plan(number, "--out", str(out)).code == 0  # github plan --out: creates
    valid("plan", json.loads(out.read_text("utf-8")))
    world.github.merge_pull(REPO_NAME, number, MERGE)
    assert world.apply().code == 0
    console_edit(world, "helper-bot", name="By hand")
    world.main.bot("assistant-bot", name="Assistant Two")
    world.main.remove_bot("helper-bot")
    plans = run_cli(world, ["plan", "--format", "json"])  # update, delete, drift
    counts = plans["plans"][0]["counts"]
    assert (counts["update"], counts["delete"], counts["drift"]) == (1, 1, 1)
    valid("plan", plans)
    report = run_cli(world, ["drift", "--format", "json", "--no-record"])
    assert report["plans"][0]["drift"] and report["failures"] == []
    valid("drift", report)


def run_cli(world: World, args: list[str]) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(world.main.root)
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        main(args)
    document: dict[str, Any] = json.loads(world.capsys.readouterr().out)
    return document


def test_real_check_reports_validate(
    ws: CheckWorkspace,  # noqa: F811
    dify: DifyStandIn,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws.bot("b", kind="dify_chat", url=dify.api_base, key_var="DIFY_CHAT", stream=False)
    ws.bot("c", kind="dify_chatflow", url=dify.api_base, key_var="DIFY_CHAT")  # wrong mode
    code, out, _ = check(capsys, "--format", "json", "--converse")
    report = json.loads(out)
    assert code == 1 and report["diagnostics"] and report["integrations"][0]["conversation"]
    valid("check", report)
