"""A file replaced atomically, again and again: the file backend's state and the git
backend's local journal.

Each write goes to a scratch file next to the target (``.<name>.swap``), is fsync'd, and is
swapped with the target in one atomic step (:func:`exchange`; a plain rename where swapping is
not possible); then the directory is fsync'd. A reader sees the old content
or the new one, never a mix, whenever the writer stops. The scratch file, which then holds the
previous content, is reused by the next write and removed by :meth:`AtomicFile.close`.

**The swap** is Linux ``renameat2(..., RENAME_EXCHANGE)``, through ctypes.

The file backend writes each new state into a scratch file and swaps it with the state file.
Unlike the classic "new temp file, rename over the old one", a swap allocates no inode and
frees none: the old state becomes the next write's scratch file. That matters on file
systems where creating a file gets slower with every recent deletion (ext4 without a journal
skips inodes freed in the last minute when it allocates one, one table lookup each), which
is exactly the pattern of a write after every API call.

Python has no binding for ``renameat2``; ctypes reaches it in the C library (glibc 2.28+,
musl 1.2.5+). Elsewhere, or on a file system that cannot swap, :func:`exchange` says so and
the caller falls back to a plain rename.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EPERM}
)
"""What a kernel or file system without swap support answers (EPERM: some sandboxes)."""

_Renameat2 = Callable[[int, bytes, int, bytes, int], int]


def _load_renameat2() -> _Renameat2 | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    path, directory = ctypes.c_char_p, ctypes.c_int
    function.argtypes = [directory, path, directory, path, ctypes.c_uint]
    function.restype = ctypes.c_int
    renameat2: _Renameat2 = function
    return renameat2


_renameat2 = _load_renameat2()


def exchange(first: Path, second: Path) -> bool:
    """Swap ``first`` and ``second`` in one atomic step; both must exist.

    False (nothing changed) when this platform or file system cannot swap, or when either
    path is missing; OSError for any other failure.
    """
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE):
        code = ctypes.get_errno()
        if code == errno.ENOENT or code in _UNSUPPORTED:
            return False
        raise OSError(code, os.strerror(code), str(first), None, str(second))
    return True


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
