"""The runner environment helpers: context, event, summary, outputs, masks, stop-commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.github.actions import (
    SUMMARY_LIMIT,
    SUMMARY_NOTE,
    annotation,
    append_step_summary,
    fit_summary,
    mask_commands,
    output_command,
    plan_outputs,
    read_context,
    read_pull_request_event,
    stop_commands,
    untrusted_block,
    write_outputs,
)
from provisioner.github.client import Repo

TOKEN = "ghs_CANARYworkflowToken0000000000"


def runner_env(tmp_path: Path) -> dict[str, str]:
    return {
        "GITHUB_REPOSITORY": "octo/bots",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "42",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_TOKEN": TOKEN,
    }


def test_context_from_the_runner_environment(tmp_path: Path) -> None:
    context = read_context(runner_env(tmp_path))
    assert context.repository == Repo("octo", "bots")
    assert context.run_url == "https://github.com/octo/bots/actions/runs/42"
    assert context.step_summary == tmp_path / "summary.md"
    assert context.token == TOKEN
    assert TOKEN not in repr(context)


@pytest.mark.parametrize(
    ("missing", "message", "hint"),
    [
        (
            "GITHUB_REPOSITORY",
            "GITHUB_REPOSITORY is not set",
            "run this in a GitHub Actions job (the runner sets it), or export it "
            "(e.g. GITHUB_REPOSITORY=octo-org/bots)",
        ),
        (
            "GITHUB_TOKEN",
            "GITHUB_TOKEN is not set",
            "pass the workflow's token in the step's environment: "
            "env: {GITHUB_TOKEN: ${{ github.token }}} (the provisioner Action does this)",
        ),
    ],
)
def test_a_missing_variable_is_named(tmp_path: Path, missing: str, message: str, hint: str) -> None:
    env = runner_env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigError) as caught:
        read_context(env)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_token_is_optional_when_not_needed_and_urls_are_checked(tmp_path: Path) -> None:
    env = runner_env(tmp_path)
    del env["GITHUB_TOKEN"]
    assert read_context(env, need_token=False).token == ""
    env["GITHUB_API_URL"] = "api.github.com"
    with pytest.raises(ConfigError, match="GITHUB_API_URL is not an http"):
        read_context(env, need_token=False)


def test_pull_request_event_and_fork_detection(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    event = {
        "pull_request": {
            "number": 7,
            "head": {"sha": "b" * 40, "repo": {"full_name": "octo/bots"}},
            "base": {"repo": {"full_name": "octo/bots"}},
        }
    }
    path.write_text(json.dumps(event))
    pull = read_pull_request_event(path)
    assert (pull.number, pull.head_sha, pull.is_from_fork) == (7, "b" * 40, False)
    event["pull_request"]["head"]["repo"] = {"full_name": "mallory/bots"}  # type: ignore[index]
    path.write_text(json.dumps(event))
    assert read_pull_request_event(path).is_from_fork


def test_event_errors(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"push": {}}))
    with pytest.raises(ConfigError) as caught:
        read_pull_request_event(path)
    assert caught.value.message == f"the event payload {path} holds no pull request"
    assert caught.value.hint == (
        "run `github plan` from a workflow triggered by `on: pull_request`"
    )
    path.write_text("{")
    with pytest.raises(ConfigError, match="is not JSON"):
        read_pull_request_event(path)
    with pytest.raises(ConfigError, match="cannot read the event payload"):
        read_pull_request_event(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="GITHUB_EVENT_PATH is not set"):
        read_pull_request_event(None)


def test_summary_is_kept_under_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    row = "| 消息助手 | " + "x" * 90 + " |\n"
    big = "```text\n" + row * 12_000 + "```\n"
    append_step_summary(path, "# first\n")
    append_step_summary(path, big)
    text = path.read_text(encoding="utf-8")
    assert len(text.encode()) <= SUMMARY_LIMIT
    assert text.startswith("# first\n```text\n")
    assert text.endswith("|\n```\n" + SUMMARY_NOTE)
    assert fit_summary("small") == "small"


def test_outputs_use_a_random_heredoc_delimiter(tmp_path: Path) -> None:
    assert output_command("changes", "true", delimiter="EOF_X") == "changes<<EOF_X\ntrue\nEOF_X\n"
    path = tmp_path / "output"
    write_outputs(path, {"plan-ids": '{"a":"1"}', "note": "two\nlines\nx=injected"})
    text = path.read_text()
    delimiters = re.findall(r"^[\w-]+<<(ghadelimiter_[0-9a-f]{32})$", text, re.M)
    assert len(set(delimiters)) == 2
    assert f"note<<{delimiters[1]}\ntwo\nlines\nx=injected\n{delimiters[1]}\n" in text
    with pytest.raises(ConfigError, match="cannot name a step output"):
        output_command("a=b", "1")


def test_plan_outputs() -> None:
    docs = [
        {"app": "b", "id": "2", "has_changes": False, "blocked": []},
        {"app": "a", "id": "1", "has_changes": True, "blocked": ["protected"]},
    ]
    assert plan_outputs(docs) == {
        "changes": "true",
        "blocked": "true",
        "plan-ids": '{"a":"1","b":"2"}',
    }
    assert plan_outputs([])["changes"] == "false"


def test_masks_escape_and_cover_each_line() -> None:
    text = mask_commands(["s3cr%t-value", "line-one\nline-two", "short", "s3cr%t-value"])
    assert text == (
        "::add-mask::s3cr%25t-value\n"
        "::add-mask::line-one%0Aline-two\n"
        "::add-mask::line-one\n"
        "::add-mask::line-two\n"
    )


def test_untrusted_text_cannot_issue_commands() -> None:
    text = "name: x\n::set-output name=a::b\n"
    block = untrusted_block(text, token="t0k")
    assert block == f"::stop-commands::t0k\n{text}::t0k::\n"
    token = re.match(r"::stop-commands::([0-9a-f]{32})\n", untrusted_block("y")).group(1)  # type: ignore[union-attr]
    assert untrusted_block("y").endswith("::\n") and token
    emitted: list[str] = []
    with pytest.raises(RuntimeError), stop_commands(emitted.append) as chosen:
        emitted.append("::error::not a command\n")
        raise RuntimeError
    assert emitted == [
        f"::stop-commands::{chosen}\n",
        "::error::not a command\n",
        f"::{chosen}::\n",
    ]


def test_annotations_escape_properties_and_data() -> None:
    assert annotation(
        "error", "bad\nvalue 100%", file="bots/a,b.yaml", line=3, col=7, title="x: y"
    ) == ("::error file=bots/a%2Cb.yaml,line=3,col=7,title=x%3A y::bad%0Avalue 100%25\n")
    assert annotation("notice", "plain") == "::notice::plain\n"
    with pytest.raises(ConfigError):
        annotation("fatal", "x")
