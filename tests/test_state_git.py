"""The git backend against real git: a bare origin, clones as laptops and runners, and a
pre-receive hook standing in for branch protection."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from provisioner.errors import LockedError, StateError
from provisioner.models import MANY_APPS
from provisioner.state import dumps_state
from provisioner.state.drift_record import DriftRecord, dumps_drift_record
from provisioner.state.git.backend import GitBackend
from provisioner.state.git.branch import StateBranch
from provisioner.state.git.cli import (
    GitRepository,
    PushResult,
    access_hint,
    ci_credentials,
    redact,
)
from provisioner.state.git.records import Batch, Outcome, PendingWrite, commit_message
from tests.git_support import branch_file, git, install_rejecting_hook, make_clone, make_origin
from tests.state_support import next_state


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def backend_in(clone: Path, app: str = "demo", **options: object) -> GitBackend:
    repo = GitRepository.discover(clone)
    branch = StateBranch(repo, "origin", "provisioner-state", **options)  # type: ignore[arg-type]
    return GitBackend(app, branch, base_dir=clone)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path)


@pytest.fixture
def laptop(origin: Path, tmp_path: Path) -> Path:
    return make_clone(origin, tmp_path / "laptop")


@pytest.fixture
def runner(origin: Path, tmp_path: Path) -> Path:
    return make_clone(origin, tmp_path / "runner")


def test_the_branch_holds_the_file_backends_document_and_the_work_tree_is_untouched(
    origin: Path, laptop: Path
) -> None:
    head = git(laptop, "rev-parse", "HEAD")
    backend = backend_in(laptop)
    with backend.lock("provisioner apply"):
        state = next_state(backend.read(), "alpha-bot")
        backend.write(state)
        record = json.loads(branch_file(origin, "locks/demo.json") or "{}")
        assert (record["app"], record["command"]) == ("demo", "provisioner apply")
    assert branch_file(origin, "demo.json") == dumps_state(state)
    assert branch_file(origin, "locks/demo.json") is None
    assert git(laptop, "rev-parse", "HEAD") == head
    assert git(laptop, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(laptop, "branch", "--list") == "* main\n"
    log = git(laptop, "log", "--format=%s", "refs/provisioner/origin/provisioner-state")
    first, *middle, last = reversed(log.splitlines())
    assert first.startswith("provisioner: lock demo for root@") or first.startswith(
        "provisioner: lock demo for "
    )
    assert first.endswith("(provisioner apply) since " + first.rsplit(" since ", 1)[1])
    assert "demo serial 1" in " ".join([*middle, last])
    assert last.endswith("unlock demo")


def test_pushes_do_not_grow_with_the_number_of_writes(laptop: Path) -> None:
    backend = backend_in(laptop)
    with backend.lock("provisioner apply"):
        state = backend.read()
        for number in range(200):
            state = next_state(state, f"bot-{number % 10}")
            backend.write(state)
    assert backend.read() == state
    assert backend.branch.pushes < 20  # lock + a few batches + release, not 200


def test_an_expired_lease_is_taken_over_and_said_so(laptop: Path, runner: Path) -> None:
    clock = Clock()
    holder = backend_in(laptop, clock=clock, lease=60.0)
    with pytest.raises(StateError) as caught, holder.lock("provisioner apply"):
        holder.write(next_state(holder.read(), "a"))
        taker = backend_in(runner, clock=Clock(clock.now + 61), lease=60.0)
        with taker.lock("provisioner apply"):
            (notice,) = taker.notices()
            assert notice.startswith("app demo: took over the lock of ")
            assert notice.endswith(
                " on git branch provisioner-state on origin: its lease ended at"
                " 2027-01-15T08:01:00Z"
            )
            taker.write(next_state(taker.read(), "b"))
        holder.write(next_state(holder.read(), "c"))  # the old holder finds out, and stops
    assert "this run lost the lock of app demo: its record was removed from the branch" in (
        caught.value.message
    )
    assert set(backend_in(runner).read().bots) == {"a", "b"}


def test_a_live_lease_refuses_naming_holder_and_lease(laptop: Path, runner: Path) -> None:
    clock = Clock()
    with (
        backend_in(laptop, clock=clock).lock("provisioner apply"),
        pytest.raises(LockedError) as caught,
        backend_in(runner, clock=clock).lock("x"),
    ):
        pass  # pragma: no cover - never entered
    assert caught.value.message.endswith(
        "(provisioner apply) since " + caught.value.message.split(" since ")[1]
    )
    assert "(lease until 2027-01-15T08:05:00Z)" in caught.value.message


def test_an_applys_plan_reads_without_a_commit_and_refuses_a_live_lock(
    origin: Path, laptop: Path, runner: Path
) -> None:
    clock = Clock()
    holder = backend_in(laptop, clock=clock, lease=60.0)
    with holder.lock("provisioner apply"):
        holder.write(next_state(holder.read(), "a"))
    tip = git(origin, "rev-parse", "provisioner-state")
    reading = Clock(clock.now)
    reader = backend_in(runner, clock=reading, lease=60.0)
    recorded = reader.read_when_free("provisioner apply")
    assert recorded is not None and set(recorded.bots) == {"a"}
    assert git(origin, "rev-parse", "provisioner-state") == tip  # no lock, no unlock commit
    with holder.lock("provisioner apply (ci run 42)"):
        with pytest.raises(LockedError) as live:
            reader.read_when_free("provisioner apply")
        with pytest.raises(LockedError) as locking:
            reader.lock("provisioner apply").__enter__()
        assert live.value.message == locking.value.message  # the same refusal as lock()
        assert "(provisioner apply (ci run 42)) since " in live.value.message
        reading.now += 61  # the lease ended: not held any more (the apply job takes it over)
        assert reader.read_when_free("provisioner apply") is not None


def test_two_apps_from_two_clones_at_once_both_land(
    origin: Path, laptop: Path, runner: Path
) -> None:
    errors: list[BaseException] = []

    def apply(clone: Path, app: str) -> None:
        try:
            backend = backend_in(clone, app)
            with backend.lock("provisioner apply"):
                state = backend.read()
                for number in range(30):
                    state = next_state(state, f"{app}-{number % 10}")
                    backend.write(state)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=apply, args=(laptop, "staging")),
        threading.Thread(target=apply, args=(runner, "production")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for app in ("staging", "production"):
        document = json.loads(branch_file(origin, f"{app}.json") or "{}")
        assert document["serial"] == 30 and len(document["bots"]) == 10
        assert branch_file(origin, f"locks/{app}.json") is None


def test_a_refused_push_keeps_the_state_locally_and_names_the_command(
    origin: Path, laptop: Path
) -> None:
    flag = install_rejecting_hook(origin)
    backend = backend_in(laptop)
    with pytest.raises(StateError) as caught, backend.lock("provisioner apply"):
        state = first = next_state(backend.read(), "a")
        backend.write(first)
        for _ in range(500):  # the first write reaches the branch before pushes are refused
            if branch_file(origin, "demo.json") is not None:
                break
            threading.Event().wait(0.01)
        flag.touch()
        state = next_state(first, "b")
        try:
            backend.write(state)
            for _ in range(200):  # the refusal arrives in the background
                if backend.pending_error() is not None:
                    break
                threading.Event().wait(0.02)
            assert backend.pending_error() is not None
            state = next_state(state, "c")
            backend.write(state)  # recorded locally, then the error is raised
        except StateError as exc:
            assert exc.hint is not None and "provisioner state push demo" in exc.hint
    error = caught.value
    assert error.message.startswith(
        "could not store the state of app demo (serial 3) in git branch provisioner-state on"
        " origin: the push was refused: [remote rejected] (pre-receive hook declined):"
        " branch protection: state pushes are not allowed here; it is kept in"
        " .provisioner/state-unsaved/demo.json"
    )
    assert error.hint == (
        "the calls made so far were applied; once git branch provisioner-state on origin takes"
        " writes again, run `provisioner state push demo .provisioner/state-unsaved/demo.json`"
        " (or re-run `provisioner apply`, which reads the bots back)"
    )
    saved = laptop / ".provisioner" / "state-unsaved" / "demo.json"
    assert saved.read_text() == dumps_state(state)
    assert json.loads(branch_file(origin, "demo.json") or "{}")["serial"] == 1


def test_a_journal_left_by_a_dead_run_is_kept_as_unsaved(laptop: Path) -> None:
    backend = backend_in(laptop)
    with backend.lock("provisioner apply"):
        first = next_state(backend.read(), "a")
        backend.write(first)
    journal = laptop / ".provisioner" / "state-journal" / "demo.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(dumps_state(next_state(first, "b")))
    with backend.lock("provisioner apply"):
        (notice,) = backend.notices()
    assert notice == (
        "app demo: an earlier run stopped before storing serial 2 on git branch"
        " provisioner-state on origin; it is kept in .provisioner/state-unsaved/demo.json"
        " (`provisioner state push demo .provisioner/state-unsaved/demo.json` stores it; a"
        " refresh adopts its bots anyway)"
    )
    assert not journal.exists()


def test_outside_a_repository_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError) as caught:
        GitRepository.discover(tmp_path)
    assert caught.value.message.startswith(f"state backend git: {tmp_path} is not inside a git")
    assert caught.value.hint == (
        "run provisioner from a clone of the manifests' repository, or use the file or"
        " postgres backend"
    )


def test_an_unreachable_remote_never_shows_its_credentials(laptop: Path) -> None:
    git(laptop, "remote", "set-url", "origin", "http://user:CANARY-token-9d2@127.0.0.1:9/x.git")
    backend = backend_in(laptop)
    with pytest.raises(StateError) as caught:
        backend.read()
    text = f"{caught.value.message} {caught.value.hint}"
    assert "CANARY" not in text
    assert caught.value.message.startswith(
        "git branch provisioner-state on origin: cannot read the state branch: "
    )
    assert redact("https://u:p@h/x and ssh://git@h") == "https://***@h/x and ssh://***@h"


def test_a_refused_push_says_what_the_server_said_never_the_credentials(
    laptop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # older git quoted the push URL, credentials and all, in "Authentication failed for"
    repo = GitRepository.discover(laptop)
    stderr = (
        b"remote: HTTP Basic: Access denied\nfatal: Authentication failed for"
        b" 'https://provisioner:glpat-CANARY-7c1@gitlab.example.com/ops/bots.git/'\n"
    )
    refused = subprocess.CompletedProcess[bytes]([], 128, b"", stderr)
    monkeypatch.setattr("provisioner.state.git.cli._run_git", lambda *_a, **_k: refused)
    result = repo.push("origin", "0" * 40, "provisioner-state", None)
    assert result == PushResult(
        "failed",
        "fatal: Authentication failed for 'https://***@gitlab.example.com/ops/bots.git/';"
        " remote: HTTP Basic: Access denied",
    )
    assert access_hint(result.detail, "s", {"GITHUB_ACTIONS": "true"}).startswith(
        "give the job `permissions: contents: write`, and let its token push to branch s"
    )
    assert access_hint(result.detail, "s", {}) == (
        "give this clone credentials that may push to branch s, then run again"
    )
    assert access_hint("fatal: unable to access 'x': Could not resolve host", "s", {}) == (
        "check that this clone can push to the branch (credentials, branch protection), then"
        " run again"
    )


def test_concurrent_reads_share_fetches(laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = backend_in(laptop)
    with first.lock("provisioner apply"):
        first.write(next_state(first.read(), "a"))
    backends = [GitBackend(f"app-{n}", first.branch, base_dir=laptop) for n in range(20)]
    fetches: list[str] = []
    real = first.branch.repo.fetch

    def counting(remote: str, branch: str) -> str | None:
        fetches.append(branch)
        return real(remote, branch)

    monkeypatch.setattr(first.branch.repo, "fetch", counting)
    threads = [threading.Thread(target=backend.read) for backend in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert 1 <= len(fetches) < len(backends)
    assert first.read().serial == 1  # a later read fetches again
    assert len(fetches) >= 2


def test_in_actions_the_job_token_reaches_git_for_the_github_server_only(tmp_path: Path) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": "ghs_token-for-git",
        "GITHUB_SERVER_URL": "https://github.example.com/",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.quotePath",
        "GIT_CONFIG_VALUE_0": "false",
    }
    extra = ci_credentials(env)
    assert extra["GIT_CONFIG_COUNT"] == "2"
    assert extra["GIT_CONFIG_KEY_1"] == "http.https://github.example.com/.extraheader"

    def header_for(url: str) -> str:
        result = subprocess.run(
            ["git", "config", "--get-urlmatch", "http.extraheader", url],
            cwd=tmp_path,
            env={**os.environ, **env, **extra},
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    basic = base64.b64encode(b"x-access-token:ghs_token-for-git").decode()
    assert header_for("https://github.example.com/octo/bots") == f"AUTHORIZATION: basic {basic}"
    assert header_for("https://elsewhere.example.com/octo/bots") == ""
    assert ci_credentials({**env, "GITHUB_ACTIONS": ""}) == {}
    assert ci_credentials({**env, "GITHUB_TOKEN": ""}) == {}
    assert ci_credentials({**env, "GITHUB_SERVER_URL": "http://plain"}) == {}


def test_in_gitlab_ci_the_push_token_reaches_git_for_the_gitlab_server_only(
    tmp_path: Path,
) -> None:
    """``CI_SERVER_URL`` with its port and relative root; the runner's clone URL carries the
    job token, which cannot push: the header is sent first, so the push token answers."""
    env = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": "https://gitlab.example.com:8443/git",
        "PROVISIONER_STATE_PUSH_TOKEN": "glpat-token-for-git",
    }
    extra = ci_credentials(env)
    assert extra["GIT_CONFIG_COUNT"] == "1"
    basic = base64.b64encode(b"provisioner:glpat-token-for-git").decode()

    def header_for(url: str) -> str:
        result = subprocess.run(
            ["git", "config", "--get-urlmatch", "http.extraheader", url],
            cwd=tmp_path,
            env={**os.environ, **extra},
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    clone = "https://gitlab-ci-token:job@gitlab.example.com:8443/git/ops/bots.git"
    assert header_for(clone) == f"AUTHORIZATION: basic {basic}"
    assert header_for("https://gitlab.example.com/git/ops/bots.git") == ""  # another port
    assert header_for("https://gitlab.example.com:8443/other/ops/bots.git") == ""
    assert ci_credentials({**env, "PROVISIONER_STATE_PUSH_TOKEN": ""}) == {}
    assert ci_credentials({**env, "GITLAB_CI": ""}) == {}


def test_drift_records_written_together_share_pushes_and_reads_reuse_a_fresh_tip(
    origin: Path, laptop: Path, runner: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_in(laptop)
    backends = [GitBackend(f"app-{n}", first.branch, base_dir=laptop) for n in range(12)]
    records = {
        backend.app: DriftRecord(backend.app, "2026-12-07T03:00:12Z", None, {}, None, 0)
        for backend in backends
    }
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda backend: backend.write_drift_record(records[backend.app]), backends))
    assert first.branch.pushes < len(backends)  # records queued meanwhile share a push
    assert branch_file(origin, "drift/app-3.json") == dumps_drift_record(records["app-3"])
    log = git(laptop, "log", "--format=%s", "refs/provisioner/origin/provisioner-state")
    assert log.splitlines()[-1].startswith("provisioner: write drift/app-")
    elsewhere = backend_in(runner, "app-3")
    fetches: list[str] = []
    real = elsewhere.branch.repo.fetch

    def counting(remote: str, branch: str) -> str | None:
        fetches.append(branch)
        return real(remote, branch)

    monkeypatch.setattr(elsewhere.branch.repo, "fetch", counting)
    assert elsewhere.read_drift_record() == records["app-3"]
    others = [GitBackend(f"app-{n}", elsewhere.branch, base_dir=runner) for n in range(12)]
    assert [other.read_drift_record() for other in others] == list(records.values())
    assert len(fetches) == 1  # a tip fetched within RECORD_FRESHNESS serves every record
    elsewhere.read()
    assert len(fetches) == 2  # the state itself is always read from a new fetch


def test_a_commit_for_many_apps_names_them_by_count() -> None:
    batch = Batch(
        writes={f"app-{n:02d}": PendingWrite(b"{}", 0, 3) for n in range(MANY_APPS + 1)},
        releases={"solo": Future()},
    )
    assert commit_message(batch, Outcome()) == (
        f"provisioner: {MANY_APPS + 1} state writes; unlock solo\n"
    )
    few = Batch(writes={f"app-{n:02d}": PendingWrite(b"{}", 0, 3) for n in range(2)})
    assert commit_message(few, Outcome()) == "provisioner: app-00 serial 3; app-01 serial 3\n"
