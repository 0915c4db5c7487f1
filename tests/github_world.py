"""The world of the end-to-end GitHub tests: the GitHub stand-in, the emulator, a bare git
origin holding the state branch, and one clone per runner job (``pr``: a ``pull_request`` job
with no secret; ``main``: the job after the merge, with the secrets), driven through the real
CLI (``main``) with runner-shaped environments and event payload files. The fixtures are in
tests/conftest.py (``world``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.state import RecordedApp
from tests.apply_support import APP_KEY, APP_SECRET, DIFY_KEY, Workspace
from tests.git_support import branch_file
from tests.github_fake import REPO_NAME, WORKFLOW_TOKEN, GitHubFake
from tests.state_support import close_opened

GIT_STATE = "state: {backend: git, branch: provisioner-state, remote: origin}\n"
SECOND_KEY = "e2e-second-app-key"
SECOND_SECRET = "e2e-second-app-secret-2222"
SECRETS = {
    "RC_KEY": APP_KEY,
    "RC_SECRET": APP_SECRET,
    "DIFY_KEY": DIFY_KEY,
    "RC2_KEY": SECOND_KEY,
    "RC2_SECRET": SECOND_SECRET,
}
HEAD = "1" * 40
MERGE = "2" * 40
RUN_URL = "https://github.com/octo/bots/actions/runs/"


@dataclass
class Run:
    """One CLI run in a runner: exit code, streams, and what it wrote for the runner."""

    code: int
    out: str
    err: str
    summary: str
    outputs: dict[str, str]

    @property
    def log(self) -> str:
        return self.out + self.err


@dataclass
class World:
    """GitHub, the emulator, the origin and the two runners' clones."""

    tmp: Path
    github: GitHubFake
    server: EmulatorServer
    capsys: pytest.CaptureFixture[str]
    pr: Workspace
    main: Workspace
    runs: list[Run] = field(default_factory=list)
    run_id: int = 100

    def both(self, action: str, *args: Any, **kwargs: Any) -> None:
        """Make the same manifest change in both clones (the merge brings it to main)."""
        for workspace in (self.pr, self.main):
            getattr(workspace, action)(*args, **kwargs)

    def run(
        self,
        where: Workspace,
        args: list[str],
        *,
        event: str,
        payload: Mapping[str, Any] | None = None,
        sha: str = HEAD,
        secrets: Mapping[str, str] | None = None,
        token: str = WORKFLOW_TOKEN,
    ) -> Run:
        self.run_id += 1
        folder = self.tmp / f"run-{self.run_id}"
        folder.mkdir()
        event_path = folder / "event.json"
        event_path.write_text(json.dumps(payload or {}), encoding="utf-8")
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": REPO_NAME,
            "GITHUB_API_URL": self.github.api_url,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": str(self.run_id),
            "GITHUB_SHA": sha,
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_STEP_SUMMARY": str(folder / "summary.md"),
            "GITHUB_OUTPUT": str(folder / "output"),
            "GITHUB_TOKEN": token,
            "NO_COLOR": "1",
            **(secrets or {}),
        }
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(where.root)
            for name in SECRETS:
                patch.delenv(name, raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            code = main(["github", *args])
        captured = self.capsys.readouterr()
        close_opened()
        summary = folder / "summary.md"
        run = Run(
            code,
            captured.out,
            captured.err,
            summary.read_text(encoding="utf-8") if summary.exists() else "",
            _outputs(folder / "output"),
        )
        self.runs.append(run)
        return run

    def plan(self, number: int, *args: str, head: str = HEAD, **kwargs: Any) -> Run:
        payload = pull_event(number, head)
        return self.run(self.pr, ["plan", *args], event="pull_request", payload=payload, **kwargs)

    def apply(self, *args: str, sha: str = MERGE, event: str = "push", **kwargs: Any) -> Run:
        kwargs.setdefault("secrets", SECRETS)
        return self.run(self.main, ["apply", *args], event=event, sha=sha, **kwargs)

    def drift(self, *args: str, **kwargs: Any) -> Run:
        kwargs.setdefault("secrets", SECRETS)
        return self.run(self.main, ["drift", *args], event="schedule", sha=MERGE, **kwargs)

    def comments(self, number: int) -> list[dict[str, Any]]:
        return self.github.comments(REPO_NAME, number)

    def state(self, app: str = "demo") -> RecordedApp:
        text = branch_file(self.tmp / "origin.git", f"{app}.json")
        assert text is not None
        return RecordedApp.from_data(json.loads(text), where=app)


def pull_event(number: int, head: str, head_repo: str = REPO_NAME) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head, "repo": {"full_name": head_repo}},
            "base": {"repo": {"full_name": REPO_NAME}},
        },
    }


def _outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` in the heredoc form ``name<<DELIM\\nvalue\\nDELIM``."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    index = 0
    while index < len(lines):
        name, _, delimiter = lines[index].partition("<<")
        end = lines.index(delimiter, index + 1)
        found[name] = "\n".join(lines[index + 1 : end])
        index = end + 1
    return found


def plan_data(body: str) -> dict[str, Any]:
    last = body.rstrip().splitlines()[-1]
    prefix = "<!-- provisioner:plan-data "
    assert last.startswith(prefix)
    data: dict[str, Any] = json.loads(last[len(prefix) : -len(" -->")])
    return data


def open_pull(world: World, head: str = HEAD) -> int:
    return world.github.add_pull(REPO_NAME, head_sha=head)


def merged_and_applied(world: World) -> int:
    """The first pull request: planned, merged as MERGE, applied. Returns its number."""
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull(REPO_NAME, number, MERGE)
    applied = world.apply()
    assert applied.code == 0, applied.log
    return number


HAND_MADE = {
    "userId": "hand",
    "name": "Made by hand",
    "type": "x",
    "profileUrl": "https://example.com/hand.png",
    "integrations": [{"type": "webhook", "callbackUrl": "https://hooks.example.com/hand"}],
}
