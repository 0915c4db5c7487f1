"""The file backend: one JSON document per app, written atomically, under a lock.

Each write goes to a scratch file next to the state file (``.<name>.swap``), is fsync'd, and
is swapped with the state file in one atomic step (:mod:`provisioner.state.exchange`; a plain
rename where swapping is not possible); then the directory is fsync'd. A reader sees the old
state or the new one, never a mix, whenever the writer stops. The scratch file, which then
holds the previous state, is reused by the next write and removed when the lock is released.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) does
from pathlib import Path

from provisioner.errors import StateError
from provisioner.state.exchange import exchange
from provisioner.state.lock import StateLock
from provisioner.state.model import LockHolder, RecordedApp, RecordedBot

_BOTS_PLACEHOLDER = "\x00bots\x00"
_BOTS_LINE = '\n  "bots": "\\u0000bots\\u0000"'
"""How the placeholder's line is encoded: a raw newline never occurs inside a JSON string, so
this can only be the document's own ``bots`` key."""
_BOT_INDENT = "\n    "

Fragments = dict[str, tuple[RecordedBot, str]]
"""userId → (the RecordedBot, its JSON as it appears in the document) for reuse."""


def dumps_state(state: RecordedApp) -> str:
    """Sorted, stable JSON (indent 2, trailing newline): reads well in a git diff.

    Exactly ``json.dumps(state.data, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"``.
    """
    return _render(state, {})


def _render(state: RecordedApp, fragments: Fragments) -> str:
    """:func:`dumps_state`, reusing the encoded form of every bot found in ``fragments`` as
    the very same RecordedBot object (recorded state is never mutated in place), and leaving
    in ``fragments`` exactly the bots of ``state``.

    The JSON encoder is pure Python once it indents; encoding only the bot that changed makes
    the write after each call cost the same whatever the number of bots.
    """
    data = state.data
    data["bots"] = _BOTS_PLACEHOLDER
    head = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    encoded: Fragments = {}
    for user_id, bot in state.bots.items():
        known = fragments.get(user_id)
        if known is not None and known[0] is bot:
            encoded[user_id] = known
        else:
            text = json.dumps(bot.data, indent=2, sort_keys=True, ensure_ascii=False)
            encoded[user_id] = (bot, text.replace("\n", _BOT_INDENT))
    fragments.clear()
    fragments.update(encoded)
    if encoded:
        entries = ",\n".join(
            f"    {encode_basestring(user_id)}: {encoded[user_id][1]}"
            for user_id in sorted(encoded)
        )
        bots = "{\n" + entries + "\n  }"
    else:
        bots = "{}"
    before, found, after = head.partition(_BOTS_LINE)
    if not found:  # pragma: no cover - the state document always has its bots key
        raise AssertionError("state document without its bots placeholder")
    return f'{before}\n  "bots": {bots}{after}\n'


class FileBackend:
    """Recorded state of app ``app`` in the JSON file ``path``.

    ``read`` never creates anything; ``write`` replaces the file atomically and refuses to
    overwrite a file it cannot read, a file of another lineage, or a newer serial.
    """

    def __init__(self, path: Path, app: str) -> None:
        self.path = path
        self.app = app
        self._lock = StateLock(path, app)
        self.scratch_path = path.with_name(f".{path.name}.swap")
        self._directory_fd: int | None = None
        """The state folder, open while the lock is held (one fsync per write, no reopen)."""
        self._fragments: Fragments = {}
        self._written: tuple[_FileIdentity, RecordedApp] | None = None
        """The file as this backend last wrote it, and what it holds."""

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
        stored = self._stored_before_write()
        if stored is not None:
            self._check_succession(stored, state)
        self._replace(_render(state, self._fragments))
        self._written = None
        identity = _identity(self.path)
        if identity is not None:
            self._written = (identity, state)

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold this app's state lock; LockedError naming the holder if it is taken.

        Releasing it removes the scratch file the writes made."""
        with self._lock.hold(command):
            self._directory_fd = _open_directory(self.path.parent)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(self.scratch_path)
                if self._directory_fd is not None:
                    os.close(self._directory_fd)
                    self._directory_fd = None

    def lock_holder(self) -> LockHolder | None:
        """Who holds the lock now (None when it is free or the holder is unknown)."""
        return self._lock.holder()

    def is_locked(self) -> bool:
        """True when a live run holds this app's state lock."""
        return self._lock.is_held()

    def unlock(self) -> LockHolder | None:
        """Force-remove a stale lock; returns the holder it recorded (None if none)."""
        return self._lock.force_unlock()

    def _stored_before_write(self) -> RecordedApp | None:
        """The stored state, without reading the file when it is still the very file this
        backend wrote last (same inode, size, modification and change times)."""
        written = self._written
        if written is not None and _identity(self.path) == written[0]:
            return written[1]
        return self._read_stored()

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
        """Write ``text`` to the scratch file, fsync it, swap it in, fsync the directory."""
        try:
            fd = self._open_scratch()
            try:
                _write_all(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if not exchange(self.scratch_path, self.path):
                os.replace(self.scratch_path, self.path)
            self._fsync_directory()
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot write the state file: {exc.strerror}",
                hint="check the directory exists and is writable; the old state is unchanged",
            ) from exc

    def _fsync_directory(self) -> None:
        """Make the swap (or rename) durable: fsync the folder that holds the state."""
        if self._directory_fd is not None:
            os.fsync(self._directory_fd)
            return
        fd = _open_directory(self.path.parent)
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open_scratch(self) -> int:
        """The scratch file, emptied (created, with its directory, when missing)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.scratch_path, flags, 0o600)
        except (FileNotFoundError, NotADirectoryError):
            self.path.parent.mkdir(parents=True, exist_ok=True)  # raises what is wrong, if anything
            return os.open(self.scratch_path, flags, 0o600)


_FileIdentity = tuple[int, int, int, int, int]


def _identity(path: Path) -> _FileIdentity | None:
    """What tells one version of a file from another without reading it."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_directory(directory: Path) -> int | None:
    """A read-only handle on ``directory`` (to fsync it); None where folders cannot be
    opened (Windows) or it does not exist yet."""
    try:
        return os.open(directory, os.O_RDONLY)
    except OSError:
        return None


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "not UTF-8"
