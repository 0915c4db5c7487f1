"""The CLI boundary: version, help, error mapping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner import __version__
from provisioner.cli import COMMANDS, cli, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"provisioner, version {__version__}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_is_listed_with_its_own_summary(name: str) -> None:
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.name == name
    assert COMMANDS[name].summary == command.get_short_help_str(10_000)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["plan", "--help"]])
def test_the_group_imports_only_the_command_that_runs(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from provisioner.cli import main\n"
        f"main({args!r})\n"
        "print(sorted(m for m in sys.modules if m.endswith('_cmd')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    expected = ["provisioner.cli.plan_cmd"] if args[0] == "plan" else []
    assert result.stdout.splitlines()[-1] == repr(expected)


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "Declarative GitOps for RongCloud IM chat bots." in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "Error: No such command 'frobnicate'."),
        (["plan", "--frobnicate"], "Error: No such option '--frobnicate'."),
        (["plan", "--format", "yaml"], "Error: Invalid value for '--format'"),
        (["apply", "--concurrency", "0"], "Error: Invalid value for '--concurrency'"),
        (["validate", "--strict", "--strict=x"], "Error: Option '--strict' does not take a value"),
    ],
)
def test_usage_errors_exit_1_never_2_which_means_changes(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_the_worst_outcome_wins() -> None:
    from provisioner.exit_codes import interrupted_exit_code, worst

    assert worst([]) == 0
    assert worst([0, 3, 1]) == 1
    assert worst([3, 0]) == 3
    assert worst([1, 4, 3]) == 4
    assert worst([4, 130]) == 130
    assert worst([0, 99]) == 1
    assert (interrupted_exit_code("interrupted"), interrupted_exit_code("terminated")) == (
        130,
        143,
    )


def test_error_exit_codes_agree_with_the_documented_ones() -> None:
    from provisioner.errors import ApplyError, ProvisionerError, UnsafePlanError
    from provisioner.exit_codes import EXIT_BLOCKED, EXIT_PARTIAL

    assert ProvisionerError.exit_code == 1
    assert UnsafePlanError.exit_code == EXIT_BLOCKED
    assert ApplyError.exit_code == EXIT_PARTIAL


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # no-color.org: present and not empty
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),  # NO_COLOR wins
    ],
)
def test_colour_only_on_a_terminal_honouring_no_color_and_force_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool
) -> None:
    from provisioner.cli.output import use_color

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream:
        def isatty(self) -> bool:
            return tty

    assert use_color(Stream()) is expected


def test_force_color_colours_a_plan_in_a_log(tmp_path: Path) -> None:
    folder = tmp_path / "bots" / "demo"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text("endpoint: local\n", encoding="utf-8")
    (folder / "a.yaml").write_text(
        "userId: a\nname: A\ntype: t\nprofileUrl: http://example.com/a.png\n"
        "integrations: [{type: webhook, callbackUrl: 'https://example.com/hook'}]\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["FORCE_COLOR"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", "--no-refresh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b[32m+\x1b[0m create a (bots/demo/a.yaml)" in result.stdout
    assert result.stderr.startswith(
        "bots/demo/a.yaml:4:13: \x1b[33m\x1b[1mwarning:\x1b[0m profileUrl: uses plain http://"
    )
