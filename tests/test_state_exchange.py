"""Swapping two files atomically (renameat2 RENAME_EXCHANGE) and saying when it cannot."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

from provisioner.state import atomic as exchange_module
from provisioner.state.atomic import exchange

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("one", encoding="utf-8")
    second.write_text("two", encoding="utf-8")
    return first, second


@linux_only
def test_swaps_the_contents_and_the_inodes(pair: tuple[Path, Path]) -> None:
    first, second = pair
    inodes = first.stat().st_ino, second.stat().st_ino
    assert exchange(first, second)
    assert (first.read_text(encoding="utf-8"), second.read_text(encoding="utf-8")) == ("two", "one")
    assert (second.stat().st_ino, first.stat().st_ino) == inodes


def test_a_missing_path_is_not_swapped(pair: tuple[Path, Path], tmp_path: Path) -> None:
    first, _ = pair
    assert not exchange(first, tmp_path / "absent")
    assert first.read_text(encoding="utf-8") == "one"


def test_without_renameat2_nothing_is_swapped(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange_module, "_renameat2", None)
    assert not exchange(*pair)
    assert pair[0].read_text(encoding="utf-8") == "one"


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_file_system_that_cannot_swap_is_not_an_error(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(exchange_module, "_renameat2", lambda *args: -1)
    monkeypatch.setattr(exchange_module.ctypes, "get_errno", lambda: code)
    assert not exchange(*pair)


@linux_only
def test_any_other_failure_is_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(NotADirectoryError) as caught:
        exchange(blocker / "a", tmp_path / "b")
    assert caught.value.filename == str(blocker / "a")
    assert caught.value.filename2 == str(tmp_path / "b")
