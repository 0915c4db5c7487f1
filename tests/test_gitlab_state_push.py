"""The GitLab state push token, end to end: ``provisioner apply`` runs as a subprocess in a
clone made the way GitLab's runner makes it (``origin`` fetches with the job token, which
cannot push), on an app with the git state backend, against the emulator, and pushes to a
loopback git server that authenticates as GitLab does (tests/git_http.py), ``CI_SERVER_URL``
pointing at it. With ``PROVISIONER_STATE_PUSH_TOKEN`` the state branch lands, the token given
to git in its environment only (:func:`provisioner.state.git.cli.ci_credentials`), never
written to the clone's configuration; with a wrong, read-only or missing token, apply fails
before any RongCloud call, says what to do, and no token appears in any output, state file,
commit or the clone's ``.git/config``. The template (examples/gitlab/provisioner.gitlab-ci.yml)
no longer touches the clone's push URL: it needs no step for this.

The loopback server speaks plain HTTP (no certificate git would trust without turning
verification off); on GitLab ``CI_SERVER_URL`` is https, which is the only difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provisioner.emulator import EmulatorServer
from tests.apply_support import Workspace, emulator, live_bots, subprocess_env
from tests.git_http import (
    DENIED,
    JOB_USER,
    NOT_ALLOWED,
    PUSH_USER,
    Access,
    GitHttp,
    allow_pushes,
    git_http,
)
from tests.git_support import branch_file, git, make_origin

TEMPLATE = (
    Path(__file__).resolve().parent.parent / "examples" / "gitlab" / "provisioner.gitlab-ci.yml"
)
HOST = "gitlab.example.test"
PROJECT = "ops/bots"
JOB_TOKEN = "CANARY-ci-job-token-0c57"
PUSH_TOKEN = "glpat-CANARY-push-token-9d3a"
READ_TOKEN = "glpat-CANARY-read-only-2f70"
WRONG_TOKEN = "glpat-CANARY-expired-b86e"
TOKENS = (JOB_TOKEN, PUSH_TOKEN, READ_TOKEN, WRONG_TOKEN)
GIT_STATE = "state: {backend: git, branch: provisioner-state}\n"


@dataclass(frozen=True)
class Job:
    """A GitLab CI job's clone of ``ops/bots`` served by ``server``, with app ``demo``."""

    clone: Path
    origin: Path
    server: GitHttp
    emulator: EmulatorServer
    gitconfig: Path

    def env(self, token: str | None) -> dict[str, str]:
        """The job's environment; git reads no configuration but the clone's."""
        ci = {
            "GITLAB_CI": "true",
            "CI_SERVER_HOST": HOST,
            "CI_SERVER_URL": self.server.url("").rstrip("/"),
            "CI_PROJECT_PATH": PROJECT,
            "CI_JOB_TOKEN": JOB_TOKEN,
            "CI_JOB_URL": f"https://{HOST}/{PROJECT}/-/jobs/77",
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if token is not None:
            ci["PROVISIONER_STATE_PUSH_TOKEN"] = token
        return subprocess_env(self.clone, ci)

    def apply(self, token: str | None, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provisioner", *flags, "apply", "--auto-approve"],
            cwd=self.clone,
            env=self.env(token),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    served = tmp_path / "gitlab"
    (served / "ops").mkdir(parents=True)
    origin = make_origin(served / "ops").rename(served / f"{PROJECT}.git")
    allow_pushes(origin)
    access = Access(
        readers={(JOB_USER, JOB_TOKEN), (PUSH_USER, READ_TOKEN)},
        pushers={(PUSH_USER, PUSH_TOKEN)},
    )
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("", encoding="utf-8")
    with git_http(served, access) as server, emulator() as rongcloud:
        clone = tmp_path / "builds" / "bots"
        clone.parent.mkdir()
        git(
            tmp_path, "clone", "-q", server.url(f"{PROJECT}.git", (JOB_USER, JOB_TOKEN)), str(clone)
        )
        workspace = Workspace(clone, rongcloud.url)
        workspace.app(extra=GIT_STATE)
        workspace.bot("assistant-bot", name="Assistant")
        workspace.bot("helper-bot")
        yield Job(clone, origin, server, rongcloud, gitconfig)


def history(origin: Path) -> str:
    """Every commit of every branch of ``origin``, with its changes."""
    return git(origin, "log", "-p", "--all")


def assert_no_token(job: Job, *texts: str) -> None:
    """No token in ``texts``, in any file provisioner wrote, nor anywhere on the branch."""
    written = [p for p in (job.clone / ".provisioner").rglob("*") if p.is_file()]
    sources = {f"output #{n}": text for n, text in enumerate(texts)} | {
        "the branches": history(job.origin)
    }
    sources |= {str(path): path.read_text("utf-8", errors="replace") for path in written}
    for where, text in sources.items():
        for token in TOKENS:
            assert token not in text, f"{token} leaked into {where}"
    config = (job.clone / ".git" / "config").read_text("utf-8")  # the runner's clone URL holds
    for token in TOKENS[1:]:  # the job token (it expires with the job); nothing else may
        assert token not in config, f"{token} was written into .git/config"


def test_the_push_token_lets_apply_push_the_state_branch_and_stays_off_disk(job: Job) -> None:
    result = job.apply(PUSH_TOKEN)
    assert result.returncode == 0, result.stderr
    assert "2 to create" in result.stdout
    document = branch_file(job.origin, "demo.json")
    assert document is not None
    assert sorted(json.loads(document)["bots"]) == ["assistant-bot", "helper-bot"]
    assert branch_file(job.origin, "locks/demo.json") is None  # released, by a push too
    assert job.server.access.pushes >= 2  # lock, state, unlock: all with the push token
    assert sorted(live_bots(job.emulator)) == ["assistant-bot", "helper-bot"]
    assert f"https://{HOST}/{PROJECT}/-/jobs/77" in history(job.origin)  # the lock record
    assert_no_token(job, result.stdout, result.stderr)


WHERE = "git branch provisioner-state on origin"
LOCK_REFUSED = f"error: {WHERE}: cannot take the lock of app demo: the push was refused: fatal: "
READ_REFUSED = f"error: app demo: {WHERE}: cannot read the state branch: fatal: "
AUTHENTICATION = f"Authentication failed for '{{url}}'; remote: {DENIED}"
FORBIDDEN = (
    f"unable to access '{{url}}': The requested URL returned error: 403; remote: {NOT_ALLOWED}"
)
CHECK_TOKEN = (
    "check PROVISIONER_STATE_PUSH_TOKEN: a project access token that has not expired or been"
    " revoked, with the write_repository scope and a role allowed to push to branch"
    " provisioner-state (Settings > Repository > Protected branches), then run again"
)
SET_TOKEN = (
    "this job pushes with CI_JOB_TOKEN, which cannot push: set the CI/CD variable"
    " PROVISIONER_STATE_PUSH_TOKEN (a project access token with the write_repository scope;"
    " masked and protected, it reaches only jobs of protected branches; docs/gitlab.md)"
)


@pytest.mark.parametrize(
    ("token", "error", "hint"),
    [
        # git sends the token first, so a wrong one is refused at the first fetch (planning)
        pytest.param(
            WRONG_TOKEN, READ_REFUSED + AUTHENTICATION, CHECK_TOKEN, id="wrong-or-expired"
        ),
        # one that may read but not write, or the job token, at the lock: the first push
        pytest.param(READ_TOKEN, LOCK_REFUSED + FORBIDDEN, CHECK_TOKEN, id="read-only"),
        pytest.param(None, LOCK_REFUSED + FORBIDDEN, SET_TOKEN, id="not-set"),
    ],
)
def test_a_token_that_cannot_push_stops_apply_before_any_call(
    job: Job, token: str | None, error: str, hint: str
) -> None:
    result = job.apply(token)
    # git names the URL it pushed to without its credentials; provisioner redacts any anyway
    url = job.server.url(f"{PROJECT}.git/")
    assert (result.returncode, result.stderr) == (1, f"{error.format(url=url)}\n  hint: {hint}\n")
    assert "Apply" not in result.stdout  # no summary: nothing was attempted
    assert live_bots(job.emulator) == {}  # the lock comes before any call
    assert branch_file(job.origin, "demo.json") is None
    assert job.server.access.pushes == 0
    debug = job.apply(token, "--debug")
    assert debug.returncode == 1
    assert_no_token(job, result.stdout, result.stderr, debug.stdout, debug.stderr)


def test_the_template_leaves_the_clone_s_push_url_alone() -> None:
    """The token reaches git through provisioner's environment only: a ``set-url`` step (or
    any step naming the token) would write it into ``.git/config`` for later jobs."""
    template = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    steps = "\n".join(template[".provisioner"]["before_script"])
    assert "set-url" not in steps and "PROVISIONER_STATE_PUSH_TOKEN" not in steps
