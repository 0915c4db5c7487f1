"""The file backend: one JSON document per app, written atomically, under a lock.

Beside it, ``drift/<app>.json`` (in the folder of ``<app>.json``) holds the app's drift
record, written atomically too, without the lock (the layout of the git backend's branch).

Writes go through :class:`~provisioner.state.atomic.AtomicFile` (scratch file, fsync, atomic
swap, fsync of the folder): a reader sees the old state or the new one, never a mix, whenever
the writer stops. Each write is a compare-and-swap on the serial it expects: it refuses a file
of another lineage, or one whose serial is not the one the writer read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from provisioner.errors import StateError
from provisioner.state.atomic import AtomicFile, FileIdentity, identity
from provisioner.state.backend import BackendKind, StateBackend
from provisioner.state.codec import Fragments, parse_state, read_state_file, render_state
from provisioner.state.drift_record import DriftRecord, dumps_drift_record, parse_drift_record
from provisioner.state.file.lock import StateLock
from provisioner.state.model import LockHolder, RecordedApp
from provisioner.state.succession import check_write, expected_serial_of


class FileBackend(StateBackend):
    """Recorded state of app ``app`` in the JSON file ``path``.

    ``read`` never creates anything; ``write`` replaces the file atomically and refuses to
    overwrite a file it cannot read, a file of another lineage, or another serial than the
    one expected.
    """

    kind: BackendKind = "file"

    def __init__(self, path: Path, app: str, *, shown: str | None = None) -> None:
        self.path = path
        self.app = app
        self.shown = shown or str(path)
        """How messages name the file (relative to the working directory when under it)."""
        self._lock = StateLock(path, app)
        self._file = AtomicFile(path)
        self.scratch_path = self._file.scratch_path
        self._fragments: Fragments = {}
        self._written: tuple[FileIdentity, RecordedApp] | None = None
        """The file as this backend last wrote it, and what it holds."""

    def __repr__(self) -> str:
        return f"FileBackend({str(self.path)!r}, app={self.app!r})"

    def describe(self) -> str:
        return self.shown

    def read_recorded(self) -> RecordedApp | None:
        raw = read_state_file(self.path, str(self.path))
        if raw is None:
            return None
        state = parse_state(raw, str(self.path))
        if state.app != self.app:
            raise StateError(
                f"{self.path}: this is the state of app {state.app}, not of app {self.app}",
                hint="give each app its own state.path in its app.yaml",
            )
        return state

    def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
        """Store ``state`` atomically if the file still holds serial ``expected_serial``
        (default ``state.serial - 1``) of the same lineage (compare-and-swap)."""
        expected = expected_serial_of(state, expected_serial)
        check_write(str(self.path), self.app, self._stored_before_write(), state, expected)
        try:
            self._file.replace(render_state(state, self._fragments).encode("utf-8"))
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot write the state file: {exc.strerror}",
                hint="check the directory exists and is writable; the old state is unchanged",
            ) from exc
        self._written = None
        written = identity(self.path)
        if written is not None:
            self._written = (written, state)

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold this app's state lock; LockedError naming the holder if it is taken.

        Releasing it removes the scratch file the writes made."""
        with self._lock.hold(command):
            self._file.open()
            try:
                yield
            finally:
                self._file.close()

    def lock_holder(self) -> LockHolder | None:
        """Who holds the lock now (None when it is free or the holder is unknown)."""
        return self._lock.holder()

    def is_locked(self) -> bool:
        """True when a live run holds this app's state lock."""
        return self._lock.is_held()

    def unlock(self) -> LockHolder | None:
        """Force-remove a stale lock; returns the holder it recorded (None if none)."""
        return self._lock.force_unlock()

    def pending_error(self) -> StateError | None:
        """Always None: every write is on disk before :meth:`write` returns."""
        return None

    def notices(self) -> list[str]:
        return []

    @property
    def drift_path(self) -> Path:
        """``drift/demo.json`` in the folder of ``demo.json``: never another app's state file
        (an app name has no separator), never listed with them."""
        return self.path.parent / "drift" / self.path.name

    def read_drift_record(self) -> DriftRecord | None:
        raw = read_state_file(self.drift_path)  # bounded; only a regular file
        if raw is None:
            return None
        return parse_drift_record(raw, str(self.drift_path), self.app)

    def write_drift_record(self, record: DriftRecord) -> None:
        writer = AtomicFile(self.drift_path)
        try:
            writer.replace(dumps_drift_record(record).encode("utf-8"))
        except OSError as exc:
            raise StateError(
                f"{self.drift_path}: cannot write the drift record: {exc.strerror}",
                hint="check the directory is writable; the state is not affected",
            ) from exc
        finally:
            writer.close()

    def _stored_before_write(self) -> RecordedApp | None:
        """The stored state, without reading the file when it is still the very file this
        backend wrote last (same inode, size, modification and change times)."""
        written = self._written
        if written is not None and identity(self.path) == written[0]:
            return written[1]
        return self.read_recorded()
