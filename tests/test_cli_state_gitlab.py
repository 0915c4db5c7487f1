"""The gitlab state backend end to end: `plan` in a merge request job reads with the job token
and no secret, `apply` writes under GitLab's lock, a second apply is refused naming the
holder's job and pipeline, and `state unlock` recovers a stale lock (GitLab's never expires).

Runner-shaped environments (GITLAB_CI, CI_PROJECT_ID, CI_API_V4_URL, CI_JOB_TOKEN,
CI_JOB_URL, CI_PIPELINE_URL) against tests/gitlab_state_fake.py and the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.state.gitlab.lockid import encode
from provisioner.state.model import LockHolder
from tests.apply_support import ENV, Workspace, enter_workspace, write_calls
from tests.gitlab_state_fake import GitLabStateFake

JOB_TOKEN = "glcbt-64_job-token-of-a-developer"
WRITE_TOKEN = "glpat-maintainer"
GITLAB = "https://gitlab.example.com/ops/bots"
OTHER_JOB = f"{GITLAB}/-/jobs/77"
OTHER_PIPELINE = f"{GITLAB}/-/pipelines/9"


def runner_env(fake: GitLabStateFake, job: int) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_PROJECT_ID": "42",
        "CI_API_V4_URL": fake.api_url,
        "CI_JOB_TOKEN": JOB_TOKEN,
        "CI_JOB_URL": f"{GITLAB}/-/jobs/{job}",
        "CI_PIPELINE_URL": f"{GITLAB}/-/pipelines/{job // 10}",
    }


@pytest.fixture
def ws(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: EmulatorServer,
    gitlab_state: GitLabStateFake,
) -> Workspace:
    gitlab_state.add_token(JOB_TOKEN, "dev-alice", "developer", job=True)
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, ENV)
    workspace.app(extra="state: {backend: gitlab}\n")
    workspace.bot("helper-bot")
    for name, value in runner_env(gitlab_state, 120).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROVISIONER_GITLAB_TOKEN", raising=False)
    return workspace


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stale_lock(fake: GitLabStateFake) -> str:
    """The lock a killed apply job on another runner left behind."""
    holder = LockHolder(
        host="runner-7",
        pid=4242,
        user="root",
        command="provisioner apply",
        started="2026-12-07T05:00:00Z",
        ci_run=OTHER_JOB,
        app="demo",
        boot_id="another-machine",
        token="0123456789abcdef",
    )
    lock_id = encode(holder, OTHER_PIPELINE)
    fake.lock_state("demo", lock_id, "project_42_bot")
    state = fake.state("demo")
    assert state is not None and state.locked_at is not None
    return state.locked_at


def test_plan_reads_with_the_job_token_and_apply_writes_under_the_lock(
    ws: Workspace,
    gitlab_state: GitLabStateFake,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the merge request's plan job: the job token only, no secret
    code, out, err = run(capsys, "plan", "demo")
    assert (code, err) == (0, "")
    assert "Plan for app demo: 1 to create" in out
    assert gitlab_state.requests == [
        ("GET", "/api/v4/projects/42/terraform/state/demo", "basic-job")
    ]
    # the apply job, with the Maintainer-role token of a protected variable
    gitlab_state.requests.clear()
    monkeypatch.setenv("PROVISIONER_GITLAB_TOKEN", WRITE_TOKEN)
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 0, err
    methods = [
        (method, path.rsplit("/", 1)[-1], how) for method, path, how in gitlab_state.requests
    ]
    assert methods == [
        # the plan job: GitLab shows a lock only to a lock request, so it checks that none is
        # held by taking the lock and giving it back
        ("POST", "lock", "private-token"),
        ("GET", "demo", "private-token"),
        ("DELETE", "lock", "private-token"),
        # the apply job: the lock, the version it applies against, one write per call
        ("POST", "lock", "private-token"),
        ("GET", "demo", "private-token"),
        ("POST", "demo", "private-token"),
        ("DELETE", "lock", "private-token"),
    ]
    stored = gitlab_state.state("demo")
    assert stored is not None and stored.lock_id is None and list(stored.versions) == [1]
    document = json.loads(stored.versions[1])
    assert document["serial"] == 1 and list(document["bots"]) == ["helper-bot"]
    assert document["last_run"] == f"{GITLAB}/-/jobs/120"
    # the next merge request's plan sees it, with the job token again
    monkeypatch.delenv("PROVISIONER_GITLAB_TOKEN")
    code, out, err = run(capsys, "plan", "demo", "--detailed-exitcode")
    assert (code, err) == (0, "")
    assert out.startswith("Plan for app demo: no changes\n")
    assert write_calls(server) == 1


def test_a_held_lock_refuses_apply_naming_the_holder_and_state_unlock_recovers_it(
    ws: Workspace,
    gitlab_state: GitLabStateFake,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROVISIONER_GITLAB_TOKEN", WRITE_TOKEN)
    since = stale_lock(gitlab_state)
    holder = (
        f"root@runner-7 pid 4242 (provisioner apply) since {since}, CI run {OTHER_JOB},"
        f" pipeline {OTHER_PIPELINE}, as GitLab user project_42_bot"
    )
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 1
    assert f"error: the state of app demo is locked by {holder}\n" in err
    assert (
        "hint: wait for that run to finish; GitLab's lock does not expire, so if it is gone"
        " (see its job), run `provisioner state unlock demo --force`"
    ) in err
    assert write_calls(server) == 0
    # on a maintainer's machine (their token, no job token): state show names the holder,
    # and unlock without --force refuses a holder it cannot check
    monkeypatch.delenv("CI_JOB_TOKEN")
    code, out, err = run(capsys, "state", "show", "demo")
    assert code == 0 and out.splitlines()[1] == (
        f"Locked by root@runner-7 pid 4242 (provisioner apply) since {since}, CI run {OTHER_JOB}"
    )
    code, out, err = run(capsys, "state", "unlock", "demo")
    assert code == 1
    assert "error: the state lock of app demo is held by a live run: root@runner-7 pid 4242" in err
    code, out, err = run(capsys, "state", "unlock", "demo", "--force")
    assert code == 0, err
    assert out == (
        "app demo: removed the lock held by root@runner-7 pid 4242 (provisioner apply) since"
        f" {since}, CI run {OTHER_JOB}\n"
    )
    state = gitlab_state.state("demo")
    assert state is not None and state.lock_id is None
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 0, err
    assert write_calls(server) == 1


def test_a_plan_job_token_cannot_lock_and_apply_says_which_role_it_needs(
    ws: Workspace,
    gitlab_state: GitLabStateFake,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 1
    assert err.startswith(
        "error: GitLab project 42: cannot lock the state of app demo: GitLab answered 403"
        " (403 Forbidden)\n  hint: the token's role may not do this: reading needs the"
        " Developer role; locking and writing need the Maintainer role"
    )
    assert write_calls(server) == 0
    code, out, err = run(capsys, "state", "show", "demo")
    assert (code, out) == (
        0,
        "App demo: no recorded state in GitLab Terraform state demo of project 42\n",
    )
    assert JOB_TOKEN not in out + err


def test_outside_gitlab_ci_the_settings_name_what_is_missing(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_PROJECT_ID")
    code, _out, err = run(capsys, "plan", "demo")
    assert code == 1
    assert "app demo: state.project is not set, and neither is CI_PROJECT_ID" in err
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    monkeypatch.delenv("CI_JOB_TOKEN")
    code, _out, err = run(capsys, "plan", "demo")
    assert code == 1
    assert (
        "app demo: the gitlab state needs a token: neither PROVISIONER_GITLAB_TOKEN nor"
        " CI_JOB_TOKEN is set"
    ) in err
