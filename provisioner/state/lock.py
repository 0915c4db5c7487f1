"""The state lock: one run at a time per app, and a message naming whoever holds it.

An OS-level file lock (``filelock``, ``<state>.lock``) gives mutual exclusion and is released
by the operating system even when the holder is killed. A sidecar JSON (``<state>.lock.json``)
records the holder (host, pid, user, command, start time) so a second run fails fast with a
message naming it. ``provisioner state unlock APP`` force-removes both files for a lock whose
holder hangs or sits on a file system without working locks.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from provisioner.errors import LockedError, StateError
from provisioner.state.model import LockHolder


def _utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class StateLock:
    """The lock of one state file. ``app`` is used in messages only."""

    def __init__(self, state_path: Path, app: str, *, clock: Callable[[], str] = _utc_now) -> None:
        self.lock_path = state_path.with_name(state_path.name + ".lock")
        self.info_path = state_path.with_name(state_path.name + ".lock.json")
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
            data = json.loads(self.info_path.read_text(encoding="utf-8"))
            return LockHolder(
                host=str(data["host"]),
                pid=int(data["pid"]),
                user=str(data["user"]),
                command=str(data["command"]),
                started=str(data["started"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
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
        """Remove the lock and its holder record; returns the holder that was recorded."""
        holder = self.holder()
        for path in (self.info_path, self.lock_path):
            with suppress(FileNotFoundError):
                path.unlink()
        return holder

    def _write_holder(self, command: str) -> None:
        holder = LockHolder(
            host=socket.gethostname(),
            pid=os.getpid(),
            user=_current_user(),
            command=command,
            started=self._clock(),
        )
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
