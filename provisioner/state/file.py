"""The file backend: one JSON document per app, written atomically, under a lock."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from provisioner.errors import StateError
from provisioner.state.lock import StateLock
from provisioner.state.model import LockHolder, RecordedApp


def dumps_state(state: RecordedApp) -> str:
    """Sorted, stable JSON (indent 2, trailing newline): reads well in a git diff."""
    return json.dumps(state.data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class FileBackend:
    """Recorded state of app ``app`` in the JSON file ``path``.

    ``read`` never creates anything; ``write`` replaces the file atomically and refuses to
    overwrite a file it cannot read, a file of another lineage, or a newer serial.
    """

    def __init__(self, path: Path, app: str) -> None:
        self.path = path
        self.app = app
        self._lock = StateLock(path, app)

    def __repr__(self) -> str:
        return f"FileBackend({str(self.path)!r}, app={self.app!r})"

    def read(self) -> RecordedApp:
        """The recorded state; a missing file gives a fresh, unwritten state (serial 0)."""
        stored = self._read_stored()
        return stored if stored is not None else RecordedApp.fresh(self.app)

    def write(self, state: RecordedApp) -> None:
        """Store ``state`` atomically (temp file in the same directory, fsync, rename, fsync
        the directory). StateError for another app, another lineage or a serial that is not
        greater than the stored one."""
        if state.app != self.app:
            raise StateError(
                f"{self.path}: refusing to write the state of app {state.app} into the state of"
                f" app {self.app}",
                hint="this is a bug in provisioner",
            )
        stored = self._read_stored()
        if stored is not None:
            self._check_succession(stored, state)
        self._replace(dumps_state(state))

    def lock(self, command: str) -> AbstractContextManager[None]:
        """Hold this app's state lock; LockedError naming the holder if it is taken."""
        return self._lock.hold(command)

    def lock_holder(self) -> LockHolder | None:
        """Who holds the lock now (None when it is free or the holder is unknown)."""
        return self._lock.holder()

    def is_locked(self) -> bool:
        """True when a live run holds this app's state lock."""
        return self._lock.is_held()

    def unlock(self) -> LockHolder | None:
        """Force-remove a stale lock; returns the holder it recorded (None if none)."""
        return self._lock.force_unlock()

    def _read_stored(self) -> RecordedApp | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot read the state file: {exc.strerror}",
                hint="check the file's permissions",
            ) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(
                f"{self.path}: state file is not valid JSON ({_json_problem(exc)})",
                hint="restore it from git or a backup; provisioner will not overwrite it",
            ) from exc
        state = RecordedApp.from_data(data, where=str(self.path))
        if state.app != self.app:
            raise StateError(
                f"{self.path}: this is the state of app {state.app}, not of app {self.app}",
                hint="give each app its own state.path in its app.yaml",
            )
        return state

    def _check_succession(self, stored: RecordedApp, state: RecordedApp) -> None:
        if stored.lineage != state.lineage:
            raise StateError(
                f"{self.path}: the stored state has lineage {stored.lineage}, not"
                f" {state.lineage}; it was replaced by another history",
                hint="re-run plan against the current state; the file was left untouched",
            )
        if state.serial <= stored.serial:
            raise StateError(
                f"{self.path}: the stored state has serial {stored.serial}; refusing to write"
                f" serial {state.serial} over it (another run wrote it meanwhile)",
                hint="re-run plan against the current state; the file was left untouched",
            )

    def _replace(self, text: str) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(
                dir=directory, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(text.encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_name, self.path)
            finally:
                if os.path.exists(temp_name):
                    os.unlink(temp_name)
            _fsync_directory(directory)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot write the state file: {exc.strerror}",
                hint="check the directory exists and is writable; the old state is unchanged",
            ) from exc


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "not UTF-8"
