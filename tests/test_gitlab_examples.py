"""examples/gitlab/ copies verbatim: the pipeline parses, has the stages, rules, artifacts and
reports docs/gitlab.md describes, includes the template, and every provisioner command in
it parses with the real CLI's options."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from provisioner.cli.gitlab_cmd import command as gitlab_command
from provisioner.cli.validate_cmd import command as validate_command
from provisioner.render.texts import Lang, parse_lang

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "gitlab"
PIPELINE: dict[str, Any] = yaml.safe_load((EXAMPLES / ".gitlab-ci.yml").read_text("utf-8"))
TEMPLATE: dict[str, Any] = yaml.safe_load(
    (EXAMPLES / "provisioner.gitlab-ci.yml").read_text("utf-8")
)
JOBS = {name: job for name, job in PIPELINE.items() if isinstance(job, dict) and "stage" in job}


def test_the_stages_run_validate_plan_apply_drift() -> None:
    assert PIPELINE["stages"] == ["validate", "plan", "apply", "drift"]
    assert {job["stage"] for job in JOBS.values()} == set(PIPELINE["stages"])
    assert all(job["extends"] == ".provisioner" for job in JOBS.values())
    assert PIPELINE["include"] == [{"local": "/ci/provisioner.gitlab-ci.yml"}]


def test_each_job_runs_in_its_pipeline_type() -> None:
    def conditions(name: str) -> list[str]:
        return [rule["if"] for rule in JOBS[name]["rules"]]

    assert conditions("plan") == ['$CI_PIPELINE_SOURCE == "merge_request_event"']
    assert JOBS["apply"]["rules"][0]["when"] == "manual"
    assert "push" in conditions("apply")[0] and "$CI_DEFAULT_BRANCH" in conditions("apply")[0]
    assert conditions("drift") == ['$CI_PIPELINE_SOURCE == "schedule"']
    assert "$PROVISIONER_PENDING" in conditions("apply-pending")[0]


def test_applies_and_drift_share_one_resource_group_and_never_get_cancelled() -> None:
    groups = {JOBS[name]["resource_group"] for name in ("apply", "apply-pending", "drift")}
    assert groups == {"provisioner-production"}
    assert JOBS["apply"]["interruptible"] is False and JOBS["apply"]["allow_failure"] is False
    assert JOBS["apply"]["environment"]["name"] == "production"
    assert "plan" not in {n for n, job in JOBS.items() if "environment" in job}


def test_the_reports_and_artifacts() -> None:
    plan = JOBS["plan"]["artifacts"]
    assert plan["reports"] == {"terraform": "plan.json", "dotenv": "plan.env"}
    assert plan["paths"] == ["plan.md"] and plan["access"] == "developer" and plan["expose_as"]
    assert JOBS["validate"]["artifacts"]["reports"] == {
        "codequality": "gl-code-quality-report.json"
    }


def commands() -> list[list[str]]:
    lines = [
        line
        for job in JOBS.values()
        for line in job["script"]
        if isinstance(line, str) and line.startswith("provisioner ")
    ]
    return [shlex.split(line.split(" || ")[0].split(" > ")[0])[1:] for line in lines]


@pytest.mark.parametrize("args", commands(), ids=lambda args: " ".join(args[:2]))
def test_every_command_parses_with_the_cli(args: list[str]) -> None:
    given = [arg.replace("$PROVISIONER_PENDING", "5") for arg in args]  # the shell expands it
    if given[0] == "gitlab":
        assert isinstance(gitlab_command, click.Group)
        gitlab_command.commands[given[1]].make_context(given[1], given[2:])
    else:
        validate_command.make_context("validate", given[1:])


def test_the_template_installs_from_hash_pinned_locks_at_a_pinned_commit() -> None:
    job = TEMPLATE[".provisioner"]
    script = "\n".join(job["before_script"])
    assert "--require-hashes -r /tmp/provisioner/requirements/core.lock" in script
    assert "--no-deps /tmp/provisioner" in script
    assert len(TEMPLATE["variables"]["PROVISIONER_REF"]) == 40


def test_chinese_for_reviewers_is_one_commented_variable_away() -> None:
    """Uncommenting the two lines gives a pipeline whose jobs have PROVISIONER_LANG: zh-CN,
    a language the CLI reads."""
    text = (EXAMPLES / ".gitlab-ci.yml").read_text("utf-8")
    assert "# variables:\n#   PROVISIONER_LANG: zh-CN\n" in text
    assert "variables" not in PIPELINE  # English stays the default
    enabled = text.replace("# variables:\n#   PROVISIONER_LANG", "variables:\n  PROVISIONER_LANG")
    variables = yaml.safe_load(enabled)["variables"]
    assert parse_lang(variables["PROVISIONER_LANG"]) is Lang.ZH_CN
