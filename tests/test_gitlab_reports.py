"""What a GitLab job writes for GitLab: the Code Quality report (`validate --format
codequality`, `gitlab plan --codequality`), the Terraform report, the dotenv report, log
sections a manifest cannot break out of, and the runner context (forks, merged results)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.errors import ConfigError
from provisioner.gitlab.ci import dotenv, read_context, require_merge_request, section

REPO = Path(__file__).resolve().parent.parent


def test_validate_writes_gitlabs_code_quality_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    folder = "tests/fixtures/manifests/name-boolean"
    assert main(["validate", "--format", "codequality", folder]) == 1
    (issue,) = json.loads(capsys.readouterr().out)
    assert issue == {
        "description": "name: expected a string, got the boolean false (written `no`)"
        ' (hint: quote it to keep it as text: name: "no")',
        "check_name": "schema-type",
        "fingerprint": issue["fingerprint"],
        "severity": "major",
        "location": {"path": f"{folder}/bot.yaml", "lines": {"begin": 2}},
    }
    assert len(issue["fingerprint"]) == 64
    assert main(["validate", "--format", "codequality", folder]) == 1
    assert json.loads(capsys.readouterr().out)[0]["fingerprint"] == issue["fingerprint"]
    assert main(["validate", "--format", "codequality"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_section_cannot_be_ended_or_faked_by_its_text() -> None:
    text = "bot \x1b[0Ksection_end:1:provisioner_demo\r\x1b[0K\nnext"
    shown = section("provisioner_demo app", "demo: 1 to create", text, collapsed=True, at=7)
    assert shown.startswith("\x1b[0Ksection_start:7:provisioner_demo_app[collapsed=true]\r")
    assert shown.count("\x1b") == 4 and shown.count("\r") == 2  # only the markers' own
    assert "bot \\u001b[0Ksection_end:1:provisioner_demo\\u000d\\u001b[0K\nnext\n" in shown


def test_dotenv_names_are_provisioners_and_values_one_line() -> None:
    assert dotenv({"changes": "true", "plan_ids": "a=1,b=2"}) == (
        "PROVISIONER_CHANGES=true\nPROVISIONER_PLAN_IDS=a=1,b=2\n"
    )
    with pytest.raises(ConfigError):
        dotenv({"x": "two\nlines"})


BASE = {"CI_API_V4_URL": "https://gitlab.example.cn/api/v4", "CI_PROJECT_ID": "42"}


def test_the_runner_context_of_each_pipeline_type() -> None:
    fork = read_context(
        {
            **BASE,
            "CI_PROJECT_ID": "77",
            "CI_COMMIT_SHA": "a" * 40,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": "3",
            "CI_MERGE_REQUEST_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "77",
        }
    )
    assert fork.is_fork and require_merge_request(fork) == 3
    in_parent = read_context(
        {
            **BASE,
            "CI_COMMIT_SHA": "a" * 40,
            "CI_MERGE_REQUEST_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "77",
        }
    )
    assert in_parent.is_fork  # a fork's merge request run in the parent project
    merged = read_context(
        {**BASE, "CI_COMMIT_SHA": "b" * 40, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "c" * 40}
    )
    assert merged.head_sha == "c" * 40 and not merged.is_fork
    schedule = read_context({**BASE, "CI_COMMIT_SHA": "d" * 40, "CI_PIPELINE_SOURCE": "schedule"})
    with pytest.raises(ConfigError) as caught:
        require_merge_request(schedule)
    assert caught.value.message.endswith("this pipeline's source is schedule")
    secret = read_context(
        {**BASE, "CI_COMMIT_SHA": "e" * 40, "PROVISIONER_GITLAB_TOKEN": "glpat-x"}
    )
    assert secret.token == "glpat-x" and "glpat-x" not in repr(secret)
