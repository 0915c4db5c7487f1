"""Recorded state: the file backend (atomic, sorted, checked writes) and its lock; reading
a damaged document is in test_state_document.py."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.errors import LockedError, StateConflictError, StateError
from provisioner.models import AppSettings, FileStateSettings
from provisioner.state import RecordedApp, RecordedBot, default_state_path, dumps_state
from provisioner.state.backends import backend_for
from provisioner.state.file.backend import FileBackend
from provisioner.state.file.lock import StateLock
from provisioner.state.holder import ci_run_url, current_holder
from provisioner.state.model import LockHolder

SPEC = {
    "userId": "zeta-bot",
    "name": "Zeta",
    "integrations": [{"type": "dify_chat", "auth": {"apiKey": {"sensitive": "hmac-sha256:ab"}}}],
}


@pytest.fixture
def backend(tmp_path: Path) -> FileBackend:
    return FileBackend(tmp_path / "state" / "demo.json", "demo")


def recorded_with_bots(backend: FileBackend) -> RecordedApp:
    """Two bots, as the first write after a fresh state (serial 1)."""
    state = backend.read()
    state = state.with_bot("zeta-bot", RecordedBot(SPEC, protect=True, server={"createdAt": 1}))
    state = state.with_bot("alpha-bot", RecordedBot({"userId": "alpha-bot"}))
    return replace(state, serial=1)


def test_missing_file_reads_as_fresh_state_without_writing(backend: FileBackend) -> None:
    state = backend.read()
    assert (state.app, state.serial, state.bots, state.version) == ("demo", 0, {}, 1)
    assert len(state.salt) == 64 and len(state.lineage) == 36
    assert not backend.path.exists()
    assert backend.read().lineage != state.lineage  # nothing was fixed by reading


def test_with_bot_returns_a_new_value_with_serial_plus_one(backend: FileBackend) -> None:
    state = backend.read()
    added = state.with_bot("a", RecordedBot({"userId": "a"}))
    removed = added.with_bot("a", None)
    assert (state.serial, added.serial, removed.serial) == (0, 1, 2)
    assert state.bots == {} and set(added.bots) == {"a"} and removed.bots == {}


def test_write_then_read_round_trips(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    backend.write(state)
    assert backend.read() == state


def test_written_json_is_sorted_stable_and_ends_with_newline(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    backend.write(state)
    text = backend.path.read_text(encoding="utf-8")
    assert text == dumps_state(state)
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text.index('"alpha-bot"') < text.index('"zeta-bot"')
    assert list(json.loads(text)) == ["app", "bots", "lineage", "salt", "serial", "version"]


def test_write_fsyncs_the_new_state_and_swaps_it_in(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = recorded_with_bots(backend)
    backend.write(first)
    calls: list[str] = []
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    second = first.with_bot("beta-bot", RecordedBot({"userId": "beta-bot"}))
    backend.write(second)
    assert calls == ["fsync", "fsync"]  # the new state, then the directory
    assert backend.path.read_text(encoding="utf-8") == dumps_state(second)
    assert backend.scratch_path.read_text(encoding="utf-8") == dumps_state(first)


def test_under_the_lock_the_folder_is_fsynced_without_reopening_it(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_open = os.fsync, os.open

    def spy_fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def spy_open(path: object, *args: object, **kwargs: object) -> int:
        calls.append(f"open {Path(str(path)).name}")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    with backend.lock("provisioner apply"):
        first = recorded_with_bots(backend)
        backend.write(first)
        monkeypatch.setattr(os, "fsync", spy_fsync)
        monkeypatch.setattr(os, "open", spy_open)
        backend.write(first.with_bot("b", RecordedBot({"userId": "b"})))
    assert calls == ["open .demo.json.swap", "fsync", "fsync"]


def test_writes_reuse_two_files_instead_of_creating_one_each(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    backend.write(state)
    backend.write(state := state.with_bot("b", RecordedBot({"userId": "b"})))
    inodes = {backend.path.stat().st_ino, backend.scratch_path.stat().st_ino}
    for name in ("c", "d", "e"):
        backend.write(state := state.with_bot(name, RecordedBot({"userId": name})))
        assert {backend.path.stat().st_ino, backend.scratch_path.stat().st_ino} == inodes
    assert backend.read() == state


def test_releasing_the_lock_removes_the_scratch_file(backend: FileBackend) -> None:
    with backend.lock("provisioner apply"):
        state = recorded_with_bots(backend)
        backend.write(state)
        backend.write(state.with_bot("b", RecordedBot({"userId": "b"})))
        assert backend.scratch_path.exists()
    assert not backend.scratch_path.exists()
    assert backend.read() == state.with_bot("b", RecordedBot({"userId": "b"}))


def test_without_swapping_the_scratch_file_is_renamed_over_the_state(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("provisioner.state.atomic.exchange", lambda first, second: False)
    state = recorded_with_bots(backend)
    backend.write(state)
    backend.write(state := state.with_bot("b", RecordedBot({"userId": "b"})))
    assert backend.read() == state
    assert sorted(p.name for p in backend.path.parent.iterdir()) == ["demo.json"]


@pytest.mark.parametrize("failing", ["fsync", "exchange"])
def test_failed_write_keeps_the_old_state(
    backend: FileBackend, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    first = recorded_with_bots(backend)
    backend.write(first)
    before = backend.path.read_bytes()

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", broken)
    else:
        monkeypatch.setattr("provisioner.state.atomic.exchange", broken)
    with pytest.raises(StateError) as caught:
        backend.write(first.with_bot("x", None))
    assert (
        caught.value.message
        == f"{backend.path}: cannot write the state file: No space left on device"
    )
    assert backend.path.read_bytes() == before
    assert backend.read() == first


def test_write_refuses_another_lineage(backend: FileBackend) -> None:
    backend.write(recorded_with_bots(backend))
    other = (
        RecordedApp.fresh("demo")
        .with_bot("a", RecordedBot({"userId": "a"}))
        .with_bot("b", RecordedBot({"userId": "b"}))
        .with_bot("c", RecordedBot({"userId": "c"}))
    )
    with pytest.raises(StateError) as caught:
        backend.write(other)
    assert "it was replaced by another history" in caught.value.message
    assert caught.value.hint == (
        "re-run plan against the current state; the stored state was left untouched"
    )


def test_write_refuses_a_serial_it_did_not_read(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    backend.write(state)
    with pytest.raises(StateConflictError) as caught:
        backend.write(state)
    assert caught.value.message == (
        f"{backend.path}: the stored state has serial 1, not 0; refusing to write serial 1 over"
        " it (another run wrote it meanwhile)"
    )
    jump = replace(state, serial=9)
    with pytest.raises(StateConflictError) as caught:
        backend.write(jump, expected_serial=3)
    assert caught.value.message == (
        f"{backend.path}: the stored state has serial 1, not 3; refusing to write serial 9 over"
        " it (it was rolled back)"
    )
    backend.write(jump, expected_serial=1)
    assert backend.read().serial == 9


def test_write_must_increase_the_serial(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    with pytest.raises(StateError) as caught:
        backend.write(state, expected_serial=1)
    assert caught.value.message == (
        f"{backend.path}: refusing to write serial 1 over serial 1: every write must increase"
        " the serial"
    )
    assert not isinstance(caught.value, StateConflictError)


def test_write_expecting_a_state_that_is_gone_is_a_conflict(backend: FileBackend) -> None:
    state = recorded_with_bots(backend)
    with pytest.raises(StateConflictError) as caught:
        backend.write(state.with_bot("b", None))
    assert caught.value.message == (
        f"{backend.path}: expected serial 1 of lineage {state.lineage}, but no state is stored"
        " any more; refusing to write serial 2"
    )


def test_write_refuses_another_apps_state(backend: FileBackend) -> None:
    with pytest.raises(StateError, match="refusing to write the state of app other"):
        backend.write(RecordedApp.fresh("other").with_bot("a", None))


def test_state_of_another_app_is_refused(tmp_path: Path) -> None:
    FileBackend(tmp_path / "s.json", "staging").write(
        RecordedApp.fresh("staging").with_bot("a", None)
    )
    with pytest.raises(StateError) as caught:
        FileBackend(tmp_path / "s.json", "production").read()
    assert caught.value.message == (
        f"{tmp_path / 's.json'}: this is the state of app staging, not of app production"
    )
    assert caught.value.hint == "give each app its own state.path in its app.yaml"


def test_backend_for_uses_state_path_or_the_default(tmp_path: Path) -> None:
    assert backend_for("demo", base_dir=tmp_path).path == tmp_path / ".provisioner/state/demo.json"
    settings = AppSettings(endpoint="local", state=FileStateSettings(path="var/demo.json"))
    assert backend_for("demo", settings, base_dir=tmp_path).path == tmp_path / "var/demo.json"
    assert default_state_path("x") == Path(".provisioner/state/x.json")


# --- lock --------------------------------------------------------------------------------


def test_lock_records_its_holder_and_cleans_up(backend: FileBackend) -> None:
    with backend.lock("provisioner apply"):
        holder = backend.lock_holder()
        assert holder is not None
        assert holder.command == "provisioner apply"
        assert holder.pid == os.getpid()
        assert backend.is_locked()
    assert backend.lock_holder() is None
    assert not backend.is_locked()


def test_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    first = StateLock(path, "demo", clock=lambda: "2026-01-02T03:04:05Z")
    second = FileBackend(path, "demo")
    with (
        first.hold("provisioner apply"),
        pytest.raises(LockedError) as caught,
        second.lock("provisioner apply"),
    ):
        pass  # pragma: no cover - never entered
    error = caught.value
    assert error.message.startswith("the state of app demo is locked by ")
    assert (
        f"@{socket.gethostname()} pid {os.getpid()} (provisioner apply) since 2026-01-02T03:04:05Z"
        in (error.message)
    )
    assert error.hint == (
        "wait for that run to finish; if it is gone, run `provisioner state unlock demo`"
    )


def test_lock_without_holder_record_still_fails_fast(tmp_path: Path) -> None:
    lock = StateLock(tmp_path / "demo.json", "demo")
    with lock.hold("x"):
        lock.info_path.unlink()
        with pytest.raises(LockedError) as caught, lock.hold("y"):
            pass  # pragma: no cover - never entered
    assert caught.value.message == (
        "the state of app demo is locked by another run (holder not recorded)"
    )


def test_stale_holder_record_of_a_dead_run_does_not_block(backend: FileBackend) -> None:
    backend.path.parent.mkdir(parents=True)
    stale = {"host": "ci-7", "pid": 1, "user": "ci", "command": "apply", "started": "x"}
    backend.path.with_name("demo.json.lock.json").write_text(json.dumps(stale))
    assert not backend.is_locked()
    with backend.lock("provisioner apply"):
        holder = backend.lock_holder()
        assert holder is not None and holder.host != "ci-7"


def test_unlock_removes_a_stale_lock_and_returns_its_holder(backend: FileBackend) -> None:
    backend.path.parent.mkdir(parents=True)
    stale = {"host": "ci-7", "pid": 99, "user": "ci", "command": "apply", "started": "t"}
    backend.path.with_name("demo.json.lock.json").write_text(json.dumps(stale))
    backend.path.with_name("demo.json.lock").write_text("")
    holder = backend.unlock()
    assert holder == LockHolder(host="ci-7", pid=99, user="ci", command="apply", started="t")
    assert holder.describe() == "ci@ci-7 pid 99 (apply) since t"
    assert list(backend.path.parent.iterdir()) == []
    assert backend.unlock() is None


def test_lock_in_an_unwritable_place_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError) as caught, FileBackend(blocker / "demo.json", "demo").lock("x"):
        pass  # pragma: no cover - never entered
    assert caught.value.message.startswith(f"cannot create the state directory {blocker}: ")


def test_unlock_leaves_the_lock_of_another_app_alone(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    with FileBackend(path, "staging").lock("provisioner apply"):
        info = path.with_name("shared.json.lock.json")
        record = info.read_text()
        assert json.loads(record)["app"] == "staging"
        with pytest.raises(StateError) as caught:
            FileBackend(path, "production").unlock()
        assert caught.value.message == (
            f"{info} is the lock of app staging, not of app production; left untouched"
        )
        assert info.read_text() == record


def test_the_holder_names_the_ci_run(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/bots",
        "GITHUB_RUN_ID": "42",
    }
    assert ci_run_url(env) == "https://github.com/acme/bots/actions/runs/42"
    assert ci_run_url({**env, "GITHUB_RUN_ATTEMPT": "2"}).endswith("/runs/42/attempts/2")
    assert ci_run_url({}) is None
    holder = current_holder("provisioner apply", "demo", env=env, started="T")
    assert holder.describe() == (
        f"{holder.user}@{socket.gethostname()} pid {os.getpid()} (provisioner apply) since T,"
        " CI run https://github.com/acme/bots/actions/runs/42"
    )
    assert LockHolder.from_data(json.loads(json.dumps(holder.data))) == holder
