"""`provisioner apply` and `plan` end to end with shared state: the git backend (a bare
origin, clones as laptop and runner, a refusing pre-receive hook as branch protection) and
the postgres backend (a throwaway cluster), against the emulator.

Like tests/test_faults.py, nothing waits for a fixed time: "the holder is still holding" is
what proves that a second run failed fast, and kills land while the run's next call is held
in the emulator's latency.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.emulator import EmulatorServer
from tests.apply_support import (
    APP_KEY,
    APP_SECRET,
    FAST_RETRIES,
    Workspace,
    calls,
    live_bots,
    subprocess_env,
    wait_until,
    write_calls,
)
from tests.git_support import (
    branch_file,
    install_holding_hook,
    install_rejecting_hook,
    make_clone,
    make_origin,
)
from tests.postgres_support import Cluster
from tests.state_support import close_opened

OTHER_KEY, OTHER_SECRET = "e2e-other-key", "e2e-other-secret-0000"
HOLD_MS = 120_000
BOTS = [f"bot-{number}" for number in range(4)]


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET, OTHER_KEY: OTHER_SECRET}) as running:
        yield running


@dataclass
class Shared:
    """Two clones of one repository (laptop and runner) whose apps keep their state in
    ``kind``; ``extra`` is the environment a run needs (the DSN)."""

    kind: str
    origin: Path
    laptop: Workspace
    runner: Workspace
    state_yaml: str
    extra: dict[str, str]

    def run(self, where: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provisioner", *args],
            cwd=where.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, where: Workspace, *args: str, group: bool = False) -> subprocess.Popen[str]:
        """``apply --auto-approve ARGS`` started; ``group``: in a process group of its own
        (with its git children), which ``os.killpg`` kills as a cancelled CI job is."""
        return subprocess.Popen(
            [sys.executable, "-m", "provisioner", "apply", "--auto-approve", *args],
            cwd=where.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=group,
        )

    def env(self) -> dict[str, str]:
        extra = {**FAST_RETRIES, **self.extra, "OTHER_KEY": OTHER_KEY, "OTHER_SECRET": OTHER_SECRET}
        return subprocess_env(self.laptop.root, extra)

    def recorded(self, app: str = "demo") -> dict[str, object]:
        result = self.run(self.runner, "state", "pull", app)
        if result.returncode != 0:
            return {}
        document: dict[str, object] = json.loads(result.stdout)
        return document


@pytest.fixture(params=["git", "postgres"])
def shared(
    request: pytest.FixtureRequest, tmp_path: Path, server: EmulatorServer
) -> Iterator[Shared]:
    origin = make_origin(tmp_path)
    extra: dict[str, str] = {}
    if request.param == "git":
        state_yaml = "state: {backend: git, branch: provisioner-state, remote: origin}\n"
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        schema = request.getfixturevalue("pg_schema")
        extra["PROVISIONER_STATE_DSN"] = cluster.dsn()
        state_yaml = (
            f'state: {{backend: postgres, dsn: "${{PROVISIONER_STATE_DSN}}", schema: {schema}}}\n'
        )
    clones = [
        Workspace(make_clone(origin, tmp_path / name), server.url) for name in ("laptop", "runner")
    ]
    for workspace in clones:
        workspace.app(extra=state_yaml)
        for user_id in BOTS:
            workspace.bot(user_id)
    yield Shared(request.param, origin, clones[0], clones[1], state_yaml, extra)
    close_opened()


def committed(server: EmulatorServer) -> int:
    return write_calls(server, kind="committed")


def test_apply_on_a_laptop_then_plan_on_a_runner_shows_no_changes(
    shared: Shared, server: EmulatorServer
) -> None:
    applied = shared.run(shared.laptop, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    plan = shared.run(shared.runner, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout or "no changes" in plan.stdout
    assert sorted(live_bots(server)) == BOTS
    assert shared.recorded()["serial"] == len(BOTS)


def test_two_applies_of_one_app_from_two_clones_one_fails_fast(
    shared: Shared, server: EmulatorServer
) -> None:
    server.set_faults(latency_ms=150)
    first = shared.start(shared.laptop, "--concurrency", "1")
    try:
        assert wait_until(lambda: committed(server) > 0 or first.poll() is not None)
        server.set_faults(latency_ms=HOLD_MS)  # the first run waits in a call, holding the lock
        second = shared.run(shared.runner, "apply", "--auto-approve")
        assert first.poll() is None  # still holding: the second did not wait for it
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith("error: the state of app demo is locked by ")
        assert f" pid {first.pid} (provisioner apply) since " in second.stderr
    finally:
        server.set_faults(latency_ms=0)
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sorted(live_bots(server)) == BOTS
    assert calls(server, "create") == len(BOTS)


@pytest.mark.slow
def test_killed_after_each_call_in_turn_converges_without_duplicates(
    shared: Shared, server: EmulatorServer
) -> None:
    # Each run is killed at one point: its call committed on the server, its answer lost
    # (drop_after_commit) and the read-back that would settle it held, so nothing records
    # that call, while every write recorded before it has reached the store. (A kill at a
    # moment left to chance once landed between a git write's journal and its push: the
    # re-run then rightly says it kept that journal, which the next test pins down.)
    server.set_faults(latency_ms=1000, drop_after_commit=1.0)
    outputs = []
    for _ in BOTS:
        before = committed(server)
        run = shared.start(shared.laptop, "--concurrency", "1")
        assert wait_until(lambda: committed(server) > before or run.poll() is not None)  # noqa: B023
        server.set_faults(latency_ms=HOLD_MS)  # the read-back waits there until the kill
        assert run.poll() is None
        assert wait_until(lambda: journal_stored(shared))
        run.send_signal(signal.SIGKILL)
        out, err = run.communicate(timeout=60)
        outputs.append(out + err)
        server.set_faults(latency_ms=1000)
        assert committed(server) == before + 1
        recorded = shared.recorded()
        assert set(recorded.get("bots", {})) <= set(live_bots(server))  # type: ignore[arg-type]
    server.set_faults(latency_ms=0, drop_after_commit=0.0)
    final = shared.run(shared.runner, "apply", "--auto-approve")
    assert final.returncode == 0, final.stderr
    assert sorted(live_bots(server)) == BOTS
    assert sorted(shared.recorded()["bots"]) == BOTS  # type: ignore[arg-type]
    assert "already existed on the server" not in "".join(outputs) + final.stdout
    # Each re-run took over the lock of the run killed before it, said so, and nothing else.
    said = {
        "git": "its process is gone",
        "postgres": "whose database session had ended",
    }[shared.kind]
    notices = [line for line in "".join(outputs).splitlines() if line.startswith("warning: ")]
    assert len(notices) == len(BOTS) - 1 and all(said in line for line in notices), notices
    assert calls(server, "create", kind="committed") == len(BOTS)
    assert shared.run(shared.laptop, "plan", "--detailed-exitcode").returncode == 0


def journal_stored(shared: Shared) -> bool:
    """True when the laptop's git journal (the writes it recorded) is on the branch too
    (always with postgres: a write is stored before it counts)."""
    journal = shared.laptop.root / ".provisioner" / "state-journal" / "demo.json"
    if shared.kind != "git" or not journal.exists():
        return True
    stored = branch_file(shared.origin, "demo.json")
    serial = json.loads(journal.read_text(encoding="utf-8"))["serial"]
    return stored is not None and json.loads(stored)["serial"] == serial


@pytest.mark.parametrize("shared", ["git"], indirect=True)
def test_a_run_killed_between_recording_a_write_and_pushing_it_is_kept_and_said_so(
    shared: Shared, server: EmulatorServer
) -> None:
    # The one point where a killed git run leaves more than its lock record: its journal
    # holds a serial the branch lacks. The re-run says so besides taking over the lock.
    hold = install_holding_hook(shared.origin)
    hold.touch()
    journal = shared.laptop.root / ".provisioner" / "state-journal" / "demo.json"
    killed = shared.start(shared.laptop, "--concurrency", "1", group=True)
    assert wait_until(lambda: journal.exists() or killed.poll() is not None)
    os.killpg(killed.pid, signal.SIGKILL)  # with its git push, held in the hook
    killed.communicate(timeout=60)
    hold.unlink()
    assert branch_file(shared.origin, "demo.json") is None  # the write never landed
    rerun = shared.run(shared.laptop, "apply", "--auto-approve")
    assert rerun.returncode == 0, rerun.stderr
    taken, kept = [line for line in rerun.stderr.splitlines() if line.startswith("warning: ")]
    assert taken.startswith("warning: app demo: took over the lock of ")
    assert taken.endswith(" on git branch provisioner-state on origin: its process is gone")
    assert kept == (
        "warning: app demo: an earlier run stopped before storing serial 1 on git branch"
        " provisioner-state on origin; it is kept in .provisioner/state-unsaved/demo.json"
        " (`provisioner state push demo .provisioner/state-unsaved/demo.json` stores it; a"
        " refresh adopts its bots anyway)"
    )
    assert sorted(shared.recorded()["bots"]) == BOTS  # type: ignore[arg-type]
    assert calls(server, "create", kind="committed") == len(BOTS)  # adopted, not created again


@pytest.mark.parametrize("shared", ["postgres"], indirect=True)
def test_a_killed_postgres_holder_frees_the_lock_at_once(
    shared: Shared, server: EmulatorServer
) -> None:
    server.set_faults(latency_ms=150)
    first = shared.start(shared.laptop, "--concurrency", "1")
    assert wait_until(lambda: committed(server) > 0 or first.poll() is not None)
    server.set_faults(latency_ms=HOLD_MS)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    server.set_faults(latency_ms=0)
    second = shared.run(shared.runner, "apply", "--auto-approve")
    assert second.returncode == 0, second.stderr
    assert "locked" not in second.stderr
    assert sorted(live_bots(server)) == BOTS


@pytest.mark.parametrize("shared", ["git"], indirect=True)
def test_a_refused_push_fails_the_apply_keeps_the_state_and_state_push_finishes(
    shared: Shared, server: EmulatorServer
) -> None:
    install_rejecting_hook(shared.origin).touch()
    applied = shared.run(shared.laptop, "apply", "--auto-approve")
    assert applied.returncode != 0, applied.stdout
    unsaved = ".provisioner/state-unsaved/demo.json"
    assert f"`provisioner state push demo {unsaved}`" in applied.stderr + applied.stdout
    kept = json.loads((shared.laptop.root / unsaved).read_text(encoding="utf-8"))
    assert set(kept["bots"]) <= set(live_bots(server)) and kept["bots"]
    assert branch_file(shared.origin, "demo.json") is None  # nothing got through
    (shared.origin / "reject-state-pushes").unlink()
    pushed = shared.run(shared.laptop, "state", "push", "demo", unsaved)
    assert pushed.returncode == 0, pushed.stderr
    assert not (shared.laptop.root / unsaved).exists()
    final = shared.run(shared.runner, "apply", "--auto-approve")
    assert final.returncode == 0, final.stderr
    assert sorted(shared.recorded()["bots"]) == BOTS  # type: ignore[arg-type]
    assert calls(server, "create", kind="committed") == len(BOTS)


def test_two_apps_applied_at_once_to_one_branch_both_land(
    shared: Shared, server: EmulatorServer
) -> None:
    for workspace in (shared.laptop, shared.runner):
        workspace.app(
            "other", key_var="OTHER_KEY", secret_var="OTHER_SECRET", extra=shared.state_yaml
        )
        for user_id in BOTS:
            workspace.bot(f"o-{user_id}", app="other")
    server.set_faults(latency_ms=30)
    first = shared.start(shared.laptop, "demo")
    second = shared.start(shared.runner, "other")
    for run in (first, second):
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert sorted(shared.recorded("demo")["bots"]) == BOTS  # type: ignore[arg-type]
    assert sorted(shared.recorded("other")["bots"]) == [f"o-{b}" for b in BOTS]  # type: ignore[arg-type]
    assert sorted(live_bots(server, OTHER_KEY)) == [f"o-{b}" for b in BOTS]
    assert shared.run(shared.laptop, "plan", "--detailed-exitcode").returncode == 0
