"""The file backend's lock: one run at a time per app, and a message naming whoever holds it.

An OS-level file lock (``filelock``, ``<state>.lock``) gives mutual exclusion and is released
by the operating system even when the holder is killed. A sidecar JSON (``<state>.lock.json``)
records the holder (host, pid, user, command, start time, CI run) so a second run fails fast
with a message naming it. ``provisioner state unlock APP`` force-removes both files for a lock
whose holder hangs or sits on a file system without working locks; it never removes a record
that names another app.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from provisioner.errors import LockedError, StateError
from provisioner.state.codec import read_state_file
from provisioner.state.holder import current_holder, utc_now
from provisioner.state.model import LockHolder


def lock_paths(state_path: Path) -> tuple[Path, Path]:
    """The OS lock file and the holder record of the state file ``state_path``."""
    return (
        state_path.with_name(state_path.name + ".lock"),
        state_path.with_name(state_path.name + ".lock.json"),
    )


def is_lock_file(path: Path) -> bool:
    """True for a lock file or holder record, which are never state files."""
    return path.name.endswith((".lock", ".lock.json"))


class StateLock:
    """The lock of one state file. ``app`` is used in messages and in the holder record."""

    def __init__(self, state_path: Path, app: str, *, clock: Callable[[], str] = utc_now) -> None:
        self.lock_path, self.info_path = lock_paths(state_path)
        self.app = app
        self._clock = clock

    @contextmanager
    def hold(self, command: str) -> Iterator[None]:
        """Hold the lock for the block; LockedError at once if another run holds it."""
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {self.lock_path.parent}: {exc.strerror}",
                hint="check the path and its permissions",
            ) from exc
        lock = FileLock(self.lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout as exc:
            raise self._locked_error() from exc
        try:
            self._write_holder(command)
            yield
        finally:
            with suppress(FileNotFoundError):
                self.info_path.unlink()
            lock.release()

    def holder(self) -> LockHolder | None:
        """The recorded holder, or None when there is none (or it cannot be read)."""
        try:
            raw = read_state_file(self.info_path)
            return LockHolder.from_data(json.loads(raw)) if raw is not None else None
        except (StateError, ValueError, RecursionError):
            return None

    def is_held(self) -> bool:
        """True when a live process holds the OS lock now (a leftover holder record of a
        process that died does not count)."""
        if not self.lock_path.exists():
            return False
        probe = FileLock(self.lock_path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        return False

    def force_unlock(self) -> LockHolder | None:
        """Remove the lock and its holder record; returns the holder that was recorded.

        Refuses (StateError) a record naming another app: state.path then points at another
        app's state, and its lock is not this app's to remove."""
        holder = self.holder()
        if holder is not None and holder.app is not None and holder.app != self.app:
            raise StateError(
                f"{self.info_path} is the lock of app {holder.app}, not of app {self.app};"
                " left untouched",
                hint="give each app its own state.path in its app.yaml",
            )
        for path in (self.info_path, self.lock_path):
            with suppress(FileNotFoundError):
                path.unlink()
        return holder

    def _write_holder(self, command: str) -> None:
        holder = current_holder(command, self.app, started=self._clock())
        text = json.dumps(holder.data, indent=2, sort_keys=True) + "\n"
        try:
            self.info_path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise StateError(
                f"cannot record the lock holder in {self.info_path}: {exc.strerror}",
                hint="check that the state directory is writable",
            ) from exc

    def _locked_error(self) -> LockedError:
        holder = self.holder()
        who = holder.describe() if holder else "another run (holder not recorded)"
        return LockedError(
            f"the state of app {self.app} is locked by {who}",
            hint=(
                "wait for that run to finish; if it is gone, run"
                f" `provisioner state unlock {self.app}`"
            ),
        )
