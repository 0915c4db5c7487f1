"""The state settings of an app named on the command line (state show/unlock/pull/push/
forget): read from app.yaml with the project's loader, even when the bots are broken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.errors import ConfigError, StateError
from provisioner.state import check_app_name
from provisioner.state.backends import backend_for
from provisioner.state.file.backend import FileBackend
from provisioner.workspace import state_backend_for, state_settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bots" / "demo").mkdir(parents=True)
    (tmp_path / "bots" / "demo" / "bot.yaml").write_text("userId: [broken\n", encoding="utf-8")
    return tmp_path


def write_app_yaml(workdir: Path, text: str) -> Path:
    path = workdir / "bots" / "demo" / "app.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_state_path_is_read_even_when_the_bots_are_broken(workdir: Path) -> None:
    write_app_yaml(workdir, "endpoint: nowhere\nstate: {path: var/demo.json}\n")
    backend = state_backend_for("demo", Path("bots"))
    assert isinstance(backend, FileBackend)
    assert backend.path == workdir / "var" / "demo.json"
    assert backend.describe() == "var/demo.json"


def test_default_without_app_yaml_or_state_block(workdir: Path) -> None:
    default = workdir / ".provisioner" / "state" / "demo.json"
    assert state_backend_for("demo", Path("bots")).describe() == ".provisioner/state/demo.json"
    write_app_yaml(workdir, "endpoint: local\n")
    backend = state_backend_for("bots/demo", Path("bots"))
    assert isinstance(backend, FileBackend) and backend.path == default
    assert (backend.app, state_backend_for("ghost", Path("bots")).app) == ("demo", "ghost")


def test_app_yaml_that_does_not_parse_is_an_error_not_a_guess(workdir: Path) -> None:
    write_app_yaml(workdir, "endpoint: [\n")
    with pytest.raises(ConfigError) as caught:
        state_backend_for("demo", Path("bots"))
    assert caught.value.message.startswith(
        "cannot read the state settings of bots/demo/app.yaml:\n  bots/demo/app.yaml:2:1: "
    )
    assert caught.value.hint == (
        "fix them (`provisioner validate bots/demo` shows the details), then run again"
    )


def test_an_invalid_state_block_is_reported_at_its_line(workdir: Path) -> None:
    write_app_yaml(workdir, "endpoint: [1, 2]\nstate:\n  backend: s3\n")
    with pytest.raises(ConfigError) as caught:
        state_backend_for("demo", Path("bots"))
    assert caught.value.message == (
        "cannot read the state settings of bots/demo/app.yaml:\n"
        "  bots/demo/app.yaml:3:12: state.backend: unknown value 's3'; expected one of file,"
        " git, postgres, gitlab"
    )


def test_app_yaml_is_read_with_bounds(workdir: Path) -> None:
    path = workdir / "bots" / "demo" / "app.yaml"
    os.symlink("/dev/zero", path)
    with pytest.raises(ConfigError) as caught:
        state_settings(path)
    assert caught.value.message == (
        "cannot read the state settings of bots/demo/app.yaml:\n"
        "  bots/demo/app.yaml:1:1: not a regular file (a device, FIFO or socket); it was not"
        " read"
    )
    path.unlink()
    aliases = "x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10)}]\n" for n in range(1, 6)
    )
    path.write_text(aliases + "state: {path: x.json}\n")
    with pytest.raises(ConfigError, match="expands to more than 10000 nodes"):
        state_settings(path)


@pytest.mark.parametrize("name", ["", ".", "..", "../etc", "a/b", ".hidden", "a\\b", "a\0b"])
def test_names_that_could_escape_their_folder_are_refused(name: str) -> None:
    with pytest.raises(StateError) as caught:
        check_app_name(name)
    assert caught.value.message == f"{name!r} is not an app name"
    with pytest.raises(StateError):
        backend_for(name)


def test_unlock_of_a_name_with_dots_touches_nothing_outside(workdir: Path) -> None:
    outside = workdir / "victim.json.lock"
    outside.write_text("")
    with pytest.raises(StateError):
        state_backend_for("../../victim", Path("bots"))
    assert outside.exists()
