"""A file replaced atomically, again and again: the file backend's state and the git
backend's local journal.

Each write goes to a scratch file next to the target (``.<name>.swap``), is fsync'd, and is
swapped with the target in one atomic step (:mod:`provisioner.state.exchange`; a plain rename
where swapping is not possible); then the directory is fsync'd. A reader sees the old content
or the new one, never a mix, whenever the writer stops. The scratch file, which then holds the
previous content, is reused by the next write and removed by :meth:`AtomicFile.close`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from provisioner.state.exchange import exchange


class AtomicFile:
    """The file ``path``, written only through :meth:`replace`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scratch_path = path.with_name(f".{path.name}.swap")
        self._directory_fd: int | None = None
        """The folder, open between :meth:`open` and :meth:`close` (one fsync per write)."""

    def open(self) -> None:
        """Keep the folder open so that each write fsyncs it without reopening it."""
        if self._directory_fd is None:
            self._directory_fd = _open_directory(self.path.parent)

    def close(self) -> None:
        """Remove the scratch file and close the folder."""
        with contextlib.suppress(OSError):
            os.unlink(self.scratch_path)
        if self._directory_fd is not None:
            os.close(self._directory_fd)
            self._directory_fd = None

    def replace(self, data: bytes) -> None:
        """Write ``data`` to the scratch file, fsync it, swap it in, fsync the directory.
        OSError when any step fails (the old content is then still in place)."""
        fd = self._open_scratch()
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not exchange(self.scratch_path, self.path):
            os.replace(self.scratch_path, self.path)
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        """Make the swap (or rename) durable: fsync the folder that holds the file."""
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


FileIdentity = tuple[int, int, int, int, int]


def identity(path: Path) -> FileIdentity | None:
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
