"""Atomically swap two files: Linux ``renameat2(..., RENAME_EXCHANGE)``, through ctypes.

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
