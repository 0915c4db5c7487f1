"""One contract, four backends: every test here runs against ``file``, ``git`` (a bare
origin and two clones), ``postgres`` (a throwaway cluster, a schema per test) and ``gitlab``
(the Terraform-state stand-in of tests/gitlab_state_fake.py, over loopback HTTP).

"Another machine" is a second view of the same store: the same folder for file, another
clone for git, another set of connections for postgres, another HTTP client for gitlab;
"another process" is a real one
(tests/state_support.py), so locks are tested across processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from provisioner.errors import LockedError, StateConflictError, StateError
from provisioner.state import RecordedApp, StateBackend, dumps_state
from provisioner.state.drift_record import BotSeen, DriftRecord
from tests.git_support import make_clone, make_origin
from tests.gitlab_state_fake import GitLabStateFake
from tests.postgres_support import Cluster
from tests.state_support import CRASH_STEPS, close_opened, make_backend, next_state

REPO = Path(__file__).resolve().parent.parent
KINDS = ["file", "git", "postgres", "gitlab"]


@dataclass
class Store:
    """The store under test and how to reach it from "here" (0) and "elsewhere" (1)."""

    kind: str
    configs: list[dict[str, Any]]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def backend(self, app: str = "demo", where: int = 0) -> StateBackend:
        config = dict(self.configs[where])
        if self.kind == "file":
            config["path"] = str(Path(config["dir"]) / ".provisioner" / "state" / f"{app}.json")
        return make_backend(self.kind, config, app)

    def config_for(self, app: str, where: int) -> str:
        config = dict(self.configs[where])
        if self.kind == "file":
            config["path"] = str(Path(config["dir"]) / ".provisioner" / "state" / f"{app}.json")
        return json.dumps(config)

    def helper(self, *args: str, where: int = 1, app: str = "demo") -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.state_support",
                args[0],
                self.kind,
                self.config_for(app, where),
                app,
                *args[1:],
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)
        close_opened()

    def hold(self, app: str = "demo", where: int = 1) -> subprocess.Popen[str]:
        """Another process holding the app's lock (until its stdin gets a line)."""
        process = self.helper("hold", where=where, app=app)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == "locked\n", process.stderr.read() if process.stderr else line
        return process


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "file":
        configs = [{"dir": str(tmp_path)}, {"dir": str(tmp_path)}]
    elif kind == "git":
        origin = make_origin(tmp_path)
        configs = [{"dir": str(make_clone(origin, tmp_path / name))} for name in ("a", "b")]
    elif kind == "gitlab":
        configs = [gitlab_config(request, tmp_path)] * 2
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        schema = request.getfixturevalue("pg_schema")
        config = {"dsn": cluster.dsn(), "schema": schema, "dir": str(tmp_path)}
        configs = [config, config]
    found = Store(kind, configs)
    yield found
    found.close()


def gitlab_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    fake: GitLabStateFake = request.getfixturevalue("gitlab_state")
    return {"api": fake.api_url, "project": "42", "token": "glpat-maintainer", "dir": str(tmp_path)}


def first_write(backend: StateBackend) -> RecordedApp:
    state = next_state(backend.read(), "alpha-bot")
    backend.write(state)
    return state


# --- reading and writing ------------------------------------------------------------------


def test_nothing_recorded_reads_as_a_fresh_state(store: Store) -> None:
    backend = store.backend()
    assert backend.read_recorded() is None
    state = backend.read()
    assert (state.app, state.serial, state.bots) == ("demo", 0, {})
    assert backend.pending_error() is None


def test_a_write_is_read_back_elsewhere_as_the_same_document(store: Store) -> None:
    state = first_write(store.backend())
    elsewhere = store.backend(where=1).read_recorded()
    assert elsewhere == state
    assert elsewhere is not None and dumps_state(elsewhere) == dumps_state(state)


def test_lost_update_refused_two_writers_from_the_same_serial(store: Store) -> None:
    first_write(store.backend())
    here, there = store.backend(), store.backend(where=1)
    mine, theirs = here.read(), there.read()
    there.write(next_state(theirs, "their-bot"))
    with pytest.raises(StateConflictError) as caught:
        here.write(next_state(mine, "my-bot"))
    assert "the stored state has serial 2, not 1; refusing to write serial 2 over it" in (
        caught.value.message
    )
    assert set(store.backend(where=1).read().bots) == {"alpha-bot", "their-bot"}


def test_serials_strictly_increase(store: Store) -> None:
    backend = store.backend()
    state = first_write(backend)
    with pytest.raises(StateError, match="every write must increase the serial"):
        backend.write(state, expected_serial=state.serial)
    serials = []
    for name in ("b", "c", "d"):
        state = next_state(state, name)
        backend.write(state)
        serials.append(store.backend(where=1).read().serial)
    assert serials == [2, 3, 4]


def test_another_lineage_is_refused(store: Store) -> None:
    state = first_write(store.backend())
    other = next_state(RecordedApp.fresh("demo"), "x")
    with pytest.raises(StateConflictError) as caught:
        store.backend(where=1).write(replace(other, serial=state.serial + 1))
    assert f"has lineage {state.lineage}, not {other.lineage}" in caught.value.message
    assert store.backend().read() == state


# --- locks --------------------------------------------------------------------------------


def test_a_second_lock_fails_fast_naming_the_holder_in_another_process(store: Store) -> None:
    first_write(store.backend())
    holder = store.hold()
    backend = store.backend()
    with pytest.raises(LockedError) as caught, backend.lock("provisioner apply"):
        pass  # pragma: no cover - never entered
    assert caught.value.message.startswith("the state of app demo is locked by ")
    assert f" pid {holder.pid} (provisioner apply) since " in caught.value.message
    assert "provisioner state unlock demo" in (caught.value.hint or "")
    assert holder.poll() is None  # it was refused at once, while the holder still holds
    assert backend.is_locked()
    found = backend.lock_holder()
    assert found is not None and (found.pid, found.app) == (holder.pid, "demo")


def test_a_dead_holder_is_recoverable(store: Store) -> None:
    first_write(store.backend())
    holder = store.hold(where=0)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    backend = store.backend()
    for _ in range(100):  # postgres notices the closed connection within milliseconds
        if not backend.is_locked():
            break
        time.sleep(0.05)
    assert not backend.is_locked()
    with backend.lock("provisioner apply"):
        state = next_state(backend.read(), "after-crash")
        backend.write(state)
    assert store.backend(where=1).read() == state
    if store.kind != "file":
        assert any(f"pid {holder.pid}" in notice for notice in backend.notices())


def test_locks_are_per_app(store: Store) -> None:
    holder = store.hold(app="staging")
    backend = store.backend("production")
    with backend.lock("provisioner apply"):
        backend.write(next_state(backend.read(), "p"))
    assert holder.poll() is None
    assert store.backend("staging").is_locked() and not backend.is_locked()


def test_forced_unlock_frees_a_live_lock(store: Store) -> None:
    first_write(store.backend())
    holder = store.hold()
    backend = store.backend()
    assert backend.is_locked()
    found = backend.unlock()  # what `state unlock --force` does
    assert found is not None and found.pid == holder.pid
    assert not backend.is_locked()
    with backend.lock("provisioner apply"):
        assert backend.lock_holder() is not None


def test_release_leaves_no_lock_and_writes_under_the_lock_are_stored(store: Store) -> None:
    backend = store.backend()
    with backend.lock("provisioner apply"):
        state = backend.read()
        for name in ("a", "b", "c"):
            state = next_state(state, name)
            backend.write(state)
        assert backend.read() == state
        assert backend.pending_error() is None
    assert not backend.is_locked()
    assert store.backend(where=1).read() == state


# --- crashes ------------------------------------------------------------------------------


def crash_cases() -> list[Any]:
    return [
        pytest.param(kind, step, when, id=f"{kind}-{step.rsplit('.', 1)[-1]}-{when}")
        for kind in KINDS
        for step in CRASH_STEPS[kind]
        for when in ("before", "after")
    ]


@pytest.mark.parametrize(("kind", "step", "when"), crash_cases())
def test_a_crash_between_the_steps_of_a_write_leaves_the_old_or_the_new_state(
    kind: str, step: str, when: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _store_of(kind, request, tmp_path)
    request.addfinalizer(store.close)
    old = first_write(store.backend())
    crashed = store.helper("crash", step, when, where=0)
    _out, err = crashed.communicate(timeout=60)
    assert crashed.returncode == 17, err
    found = store.backend(where=1).read()  # parses: never half a state
    assert found in (old, next_state(old, "crash-bot")), found
    recovering = store.backend()
    with recovering.lock("provisioner apply"):
        recovering.write(next_state(recovering.read(), "next-bot"))
    assert "next-bot" in store.backend(where=1).read().bots


def _store_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "file":
        return Store(kind, [{"dir": str(tmp_path)}, {"dir": str(tmp_path)}])
    if kind == "git":
        origin = make_origin(tmp_path)
        return Store(
            kind, [{"dir": str(make_clone(origin, tmp_path / name))} for name in ("a", "b")]
        )
    if kind == "gitlab":
        return Store(kind, [gitlab_config(request, tmp_path)] * 2)
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    config = {
        "dsn": cluster.dsn(),
        "schema": request.getfixturevalue("pg_schema"),
        "dir": str(tmp_path),
    }
    return Store(kind, [config, config])


# --- the drift record ---------------------------------------------------------------------


def seen_record(at: str = "2026-12-07T03:00:12Z", serial: int = 1) -> DriftRecord:
    bots = {"alpha-bot": BotSeen("drifted", ("name",)), "hand-bot": BotSeen("unmanaged")}
    return DriftRecord("demo", at, "https://github.com/o/r/actions/runs/7", bots, None, serial)


def test_a_drift_record_is_kept_beside_the_state_and_read_elsewhere(store: Store) -> None:
    backend = store.backend()
    assert backend.read_drift_record() is None
    state = first_write(backend)
    backend.write_drift_record(seen_record())
    assert store.backend(where=1).read_drift_record() == seen_record()
    assert store.backend(where=1).read() == state  # no serial, no other state
    backend.write_drift_record(seen_record("2026-12-08T03:00:12Z"))  # the last writer wins
    assert store.backend(where=1).read_drift_record() == seen_record("2026-12-08T03:00:12Z")
    assert store.backend("other", where=1).read_drift_record() is None


def test_a_drift_record_needs_no_lock_and_never_conflicts_with_an_apply(store: Store) -> None:
    state = first_write(store.backend())
    holder = store.hold()  # another process applies
    store.backend().write_drift_record(seen_record())
    assert store.backend(where=1).read_drift_record() == seen_record()
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    _out, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err  # its release landed on top of the record
    applying = store.backend()
    with applying.lock("provisioner apply"):
        applying.write(next_state(applying.read(), "beta-bot"))
    assert store.backend(where=1).read().serial == state.serial + 1
    assert store.backend(where=1).read_drift_record() == seen_record()
