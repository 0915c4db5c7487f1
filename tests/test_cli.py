"""The CLI boundary: version, help, error mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provisioner import __version__
from provisioner.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"provisioner, version {__version__}"


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
    from provisioner.cli.exit_codes import interrupted_exit_code, worst

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
    from provisioner.cli.exit_codes import EXIT_BLOCKED, EXIT_PARTIAL
    from provisioner.errors import ApplyError, ProvisionerError, UnsafePlanError

    assert ProvisionerError.exit_code == 1
    assert UnsafePlanError.exit_code == EXIT_BLOCKED
    assert ApplyError.exit_code == EXIT_PARTIAL
