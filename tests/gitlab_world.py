"""The world of the end-to-end GitLab tests: the GitLab stand-in, the emulator, a bare git
origin holding the state branch, and one clone per runner job (``mr``: a merge request
pipeline with no secret; ``main``: the pipelines of the default branch, with the secrets),
driven through the real CLI with runner-shaped environments (``CI_*``) for each pipeline
type. The ``gitlab_world`` fixture is here; test modules import it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.state import RecordedApp
from tests.apply_support import APP_KEY, APP_SECRET, Workspace
from tests.git_support import branch_file, make_clone, make_origin
from tests.github_fake import FakeClock
from tests.github_world import GIT_STATE, SECOND_KEY, SECOND_SECRET, SECRETS
from tests.gitlab_fake import BOT_TOKEN, FORK_ID, JOB_TOKEN, PROJECT_ID, GitLabFake
from tests.state_support import close_opened

HEAD = "1" * 40
MERGE = "2" * 40
PLAN_MARKER = "<!-- provisioner:plan -->"
APPLY_MARKER = "<!-- provisioner:apply -->"
PENDING_MARKER = "<!-- provisioner:pending -->"


@dataclass
class Job:
    """One CLI run in a GitLab job: exit code, streams, and the files it wrote."""

    code: int
    out: str
    err: str
    files: dict[str, str]

    @property
    def log(self) -> str:
        return self.out + self.err


@dataclass
class GitLabWorld:
    tmp: Path
    gitlab: GitLabFake
    server: EmulatorServer
    capsys: pytest.CaptureFixture[str]
    mr: Workspace
    main: Workspace
    jobs: list[Job] = field(default_factory=list)
    job_id: int = 700

    @property
    def pr(self) -> Workspace:
        """The merge request's clone under the name the GitHub helpers use."""
        return self.mr

    def both(self, action: str, *args: Any, **kwargs: Any) -> None:
        for workspace in (self.mr, self.main):
            getattr(workspace, action)(*args, **kwargs)

    def run(self, where: Workspace, args: list[str], env: Mapping[str, str]) -> Job:
        self.job_id += 1
        folder = self.tmp / f"job-{self.job_id}"
        folder.mkdir()
        names = ("plan.md", "report.env", "tf.json", "cq.json")
        paths = {name: folder / name for name in names}
        files_args = ["--summary", str(paths["plan.md"]), "--dotenv", str(paths["report.env"])]
        full = {
            "GITLAB_CI": "true",
            "CI": "true",
            "CI_API_V4_URL": self.gitlab.api_url,
            "CI_SERVER_URL": "https://gitlab.example.cn",
            "CI_PROJECT_ID": str(PROJECT_ID),
            "CI_DEFAULT_BRANCH": "main",
            "CI_JOB_URL": f"https://gitlab.example.cn/g/bots/-/jobs/{self.job_id}",
            "CI_JOB_TOKEN": JOB_TOKEN,
            "NO_COLOR": "1",
            **env,
        }
        extra = [
            "--terraform-report",
            str(paths["tf.json"]),
            "--codequality",
            str(paths["cq.json"]),
        ]
        debug = ["--debug"] if "--debug" in args else []  # the group's option, first
        args = [arg for arg in args if arg != "--debug"]
        command = [
            *debug,
            *args[:2],
            *files_args,
            *(extra if args[1] == "plan" else []),
            *args[2:],
        ]
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(where.root)
            for name in (*SECRETS, "PROVISIONER_GITLAB_TOKEN"):
                patch.delenv(name, raising=False)
            for name, value in full.items():
                patch.setenv(name, value)
            code = main(command)
        captured = self.capsys.readouterr()
        close_opened()
        files = {name: p.read_text(encoding="utf-8") for name, p in paths.items() if p.exists()}
        job = Job(code, captured.out, captured.err, files)
        self.jobs.append(job)
        return job

    def plan(self, iid: int, *args: str, head: str = HEAD, fork: bool = False, **env: str) -> Job:
        """The plan job of a merge request pipeline (a fork's runs in the fork, with the
        fork's variables: no comment token)."""
        project = str(FORK_ID if fork else PROJECT_ID)
        variables = {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(iid),
            "CI_MERGE_REQUEST_PROJECT_ID": str(PROJECT_ID),
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": project,
            "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
            "CI_PROJECT_ID": project,
            "CI_COMMIT_SHA": head,
            **({} if fork else {"PROVISIONER_GITLAB_TOKEN": BOT_TOKEN}),
            **env,
        }
        return self.run(self.mr, ["gitlab", "plan", *args], variables)

    def apply(self, *args: str, sha: str = MERGE, source: str = "push", **env: str) -> Job:
        variables = {
            "CI_PIPELINE_SOURCE": source,
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SHA": sha,
            "PROVISIONER_GITLAB_TOKEN": BOT_TOKEN,
            **SECRETS,
            **env,
        }
        return self.run(self.main, ["gitlab", "apply", *args], variables)

    def drift(self, *args: str, **env: str) -> Job:
        variables = {
            "CI_PIPELINE_SOURCE": "schedule",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SHA": MERGE,
            "PROVISIONER_GITLAB_TOKEN": BOT_TOKEN,
            **SECRETS,
            **env,
        }
        return self.run(self.main, ["gitlab", "drift", *args], variables)

    def notes(self, iid: int, marker: str = "", thread: str = "merge_requests") -> list[str]:
        bodies = [note["body"] for note in self.gitlab.notes(thread, iid)]
        return [body for body in bodies if body.startswith(marker)]

    def state(self, app: str = "demo") -> RecordedApp:
        text = branch_file(self.tmp / "origin.git", f"{app}.json")
        assert text is not None
        return RecordedApp.from_data(json.loads(text), where=app)


def plan_data(body: str) -> dict[str, Any]:
    last = body.rstrip().splitlines()[-1]
    prefix = "<!-- provisioner:plan-data "
    assert last.startswith(prefix)
    data: dict[str, Any] = json.loads(last[len(prefix) : -len(" -->")])
    return data


def reviewed(world: GitLabWorld, head: str) -> int:
    """A merge request at ``head``, planned (no secret), with its note."""
    iid = world.gitlab.add_merge_request(head)
    planned = world.plan(iid, head=head)
    assert planned.code == 0, planned.log
    return iid


def merged_and_applied(world: GitLabWorld) -> int:
    iid = reviewed(world, HEAD)
    world.gitlab.merge(iid, MERGE)
    applied = world.apply()
    assert applied.code == 0, applied.log
    return iid


@pytest.fixture
def gitlab_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[GitLabWorld]:
    """GitLab, the emulator, the origin and the two runners' clones, with app ``demo`` (git
    state backend) and its bots ``assistant-bot`` and ``helper-bot`` in both clones."""
    clock = FakeClock(start=1_800_000_000.0)
    with (
        GitLabFake(clock=clock.now) as gitlab,
        EmulatorServer(apps={APP_KEY: APP_SECRET, SECOND_KEY: SECOND_SECRET}) as server,
    ):
        origin = make_origin(tmp_path)
        mr = Workspace(make_clone(origin, tmp_path / "mr"), server.url)
        main_clone = Workspace(make_clone(origin, tmp_path / "main"), server.url)
        world = GitLabWorld(tmp_path, gitlab, server, capsys, mr, main_clone)
        world.both("app", extra=GIT_STATE)
        world.both("bot", "assistant-bot", name="Assistant")
        world.both("bot", "helper-bot", name="Helper")
        yield world
        close_opened()
