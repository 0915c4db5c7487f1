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


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err


def test_error_exit_codes_agree_with_the_documented_ones() -> None:
    from provisioner.cli.exit_codes import EXIT_BLOCKED, EXIT_PARTIAL
    from provisioner.errors import ApplyError, ProvisionerError, UnsafePlanError

    assert ProvisionerError.exit_code == 1
    assert UnsafePlanError.exit_code == EXIT_BLOCKED
    assert ApplyError.exit_code == EXIT_PARTIAL
