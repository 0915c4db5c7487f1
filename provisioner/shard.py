"""Sharding: which of N jobs takes an app (``--shard I/N`` of plan, apply, drift and their
``github`` forms), so a repository with hundreds of apps fans out over a CI matrix.

Job I of N takes the apps with ``shard_of(app, N) == I``. The hash is the first 8 bytes of
SHA-256 of the app name (UTF-8), as an unsigned big-endian integer, modulo N, plus one:
stable across processes, machines and Python versions (unlike ``hash``), and independent of
which other apps exist, so adding an app never moves another. Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from provisioner.errors import ConfigError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(app: str, count: int) -> int:
    """The shard (1..count) that plans ``app`` when the apps are split over ``count`` jobs."""
    if count < 1:
        raise ConfigError(f"the shard count must be at least 1, not {count}")
    digest = hashlib.sha256(app.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; ConfigError unless 1 ≤ I ≤ N."""
    match = _SHARD.match(text)
    index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= index <= count:
        raise ConfigError(
            f"--shard {text!r} is not of the form I/N with 1 ≤ I ≤ N",
            hint="give each matrix job its own I of the same N, e.g. --shard 1/4 ... --shard 4/4",
        )
    return index, count


def apps_in_shard(apps: Sequence[str], index: int, count: int) -> list[str]:
    """The apps among ``apps`` that shard ``index`` of ``count`` plans, in their order."""
    return [app for app in apps if shard_of(app, count) == index]
