"""CLI conventions: every option from the environment (``PROVISIONER_<COMMAND>_<OPTION>``) and
commands run from any folder inside the repository (``bots/`` found upward, up to the git
root), end to end on the embedded emulator."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from provisioner.cli import main


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    monkeypatch.chdir(root)
    for name in list(os.environ):
        if name.startswith("PROVISIONER"):
            monkeypatch.delenv(name)
    assert main(["init", "demo"]) == 0
    return root


def test_options_come_from_provisioner_command_option_variables(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    monkeypatch.setenv("PROVISIONER_PLAN_FORMAT", "json")
    monkeypatch.setenv("PROVISIONER_PLAN_DETAILED_EXITCODE", "true")
    assert main(["plan", "demo"]) == 2
    assert json.loads(capsys.readouterr().out)["plans"][0]["app"] == "demo"
    assert main(["plan", "demo", "--format", "text"]) == 2  # the option wins
    assert capsys.readouterr().out.startswith("Plan for app demo: 1 to create")
    monkeypatch.setenv("PROVISIONER_STATE_SHOW_FORMAT", "json")
    assert main(["state", "show", "demo"]) == 0
    assert json.loads(capsys.readouterr().out)["apps"][0]["recorded"] is False
    monkeypatch.setenv("PROVISIONER_PLAN_FORMAT", "yaml")
    assert main(["plan", "demo"]) == 1
    assert "Error: Invalid value for '--format': 'yaml' is not one of" in capsys.readouterr().err


def test_commands_work_from_a_folder_below_the_root(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = repo / "bots" / "demo"
    monkeypatch.chdir(app)
    capsys.readouterr()
    assert main(["validate"]) == 0
    assert main(["validate", "."]) == 0
    assert capsys.readouterr().out == "bots/demo: 1 bot valid\n.: 1 bot valid\n"  # as given
    assert main(["plan", "--out", "plan.json"]) == 0  # the path typed here stays here
    assert (app / "plan.json").is_file()
    assert main(["apply", "--plan", "plan.json"]) == 0
    assert (repo / ".provisioner" / "state" / "demo.json").is_file()  # the root's state
    assert not (app / ".provisioner").exists()
    assert Path.cwd() == app  # restored
    capsys.readouterr()
    assert main(["plan", "demo", "--detailed-exitcode"]) == 0


def test_the_search_stops_at_the_git_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bots" / "demo").mkdir(parents=True)  # above the repository: not used
    inner = tmp_path / "inner"
    (inner / "docs").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=inner, check=True)
    monkeypatch.chdir(inner / "docs")
    assert main(["plan"]) == 1
    assert capsys.readouterr().err == (
        "error: no bots directory bots\n"
        "  hint: run inside the repository (bots/ is found up to its root), or pass --bots-dir"
        " or an app folder\n"
    )
