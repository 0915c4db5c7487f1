"""`provisioner validate` end to end: main([...]) in-process and `python -m provisioner`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli import main

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "manifests"


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(REPO)
    for name in ("DIFY_ASSISTANT_KEY", "DIFY_COMPANION_KEY", "DIFY_TRANSLATOR_KEY"):
        monkeypatch.delenv(name, raising=False)
    return REPO


def test_demo_is_valid_by_default(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "bots/demo: 3 bots valid\n"
    assert captured.err == ""


def test_errors_of_all_files_and_a_summary(
    in_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    assert main(["validate", "many-errors-sorted", "name-boolean"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "many-errors-sorted/a.yaml:8:1: error: extra: unknown key"
    assert out[-2:] == [
        "many-errors-sorted: 5 errors in 2 of 2 bots",
        "name-boolean: 1 error in 1 of 1 bot",
    ]
    assert (
        "name-boolean/bot.yaml:2:7: error: name: expected a string, got the boolean false "
        "(written `no`)" in out
    )


def test_json_format(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", "tests/fixtures/manifests/name-boolean"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data == [
        {
            "file": "tests/fixtures/manifests/name-boolean/bot.yaml",
            "line": 2,
            "column": 7,
            "path": "name",
            "code": "schema-type",
            "severity": "error",
            "message": "expected a string, got the boolean false (written `no`)",
            "hint": 'quote it to keep it as text: name: "no"',
        }
    ]
    assert main(["validate", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_github_format(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github", "tests/fixtures/manifests/type-empty"]) == 1
    assert capsys.readouterr().out == (
        "::error file=tests/fixtures/manifests/type-empty/bot.yaml,line=3,col=7,"
        "title=schema-min-length::type: must not be empty\n"
    )
    assert main(["validate", "--format", "github"]) == 0
    assert capsys.readouterr().out == ""


def test_warnings_fail_only_with_strict(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = "tests/fixtures/manifests/warning-http-urls"
    assert main(["validate", folder]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{folder}: 1 bot valid (2 warnings)"
    assert main(["validate", "--strict", folder]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"{folder}: 2 warnings in 1 of 1 bot"


def test_a_state_path_outside_the_repository_fails_with_strict(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = "tests/fixtures/manifests/warning-state-path-outside"
    assert main(["validate", folder]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{folder}: 1 bot valid (1 warning)"
    assert main(["validate", "--strict", folder]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"{folder}: 1 warning in app.yaml"


def test_require_env_names_variables_never_values(
    in_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFY_ASSISTANT_KEY", "app-canary-0f9e8d7c")
    assert main(["validate", "--require-env"]) == 1
    out = capsys.readouterr().out
    assert "environment variable DIFY_COMPANION_KEY is not set" in out
    assert "DIFY_ASSISTANT_KEY" not in out
    assert "app-canary-0f9e8d7c" not in out
    monkeypatch.setenv("DIFY_COMPANION_KEY", "app-canary-1")
    monkeypatch.setenv("DIFY_TRANSLATOR_KEY", "app-canary-2")
    assert main(["validate", "--require-env"]) == 0
    assert "app-canary" not in capsys.readouterr().out
    monkeypatch.setenv("DIFY_TRANSLATOR_KEY", "")  # what CI gives for a missing secret
    assert main(["validate", "--require-env"]) == 1
    out = capsys.readouterr().out
    assert (
        "bots/demo/translator.yaml:14:15: error: integrations[0].auth.apiKey: environment"
        " variable DIFY_TRANSLATOR_KEY is empty\n"
        "  hint: set DIFY_TRANSLATOR_KEY to the secret's value; in CI, check that the secret"
        " exists and is passed to this job (a missing secret arrives as an empty string)"
    ) in out
    assert "app-canary" not in out


def test_url_credentials_fail_validate_only_with_strict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = "tests/fixtures/manifests/warning-url-credentials"
    assert main(["validate", folder]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{folder}: 1 bot valid (3 warnings)"
    assert main(["validate", "--strict", folder]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"{folder}: 3 warnings in 1 of 1 bot"
    assert "hunter2" not in out and "t0ps3cret" not in out


def test_missing_path_is_a_clear_error(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nowhere"]) == 1
    assert capsys.readouterr().err == (
        "error: nowhere does not exist\n"
        "  hint: pass the bots folder (default: bots) or an app folder such as bots/demo\n"
    )


def test_help_explains_the_command(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: provisioner validate [OPTIONS] [PATH]..." in out
    for text in (
        "--format [text|json|github|codequality]",
        "--strict",
        "--require-env",
        "Exit status",
    ):
        assert text in out


def test_python_dash_m_validate(in_repo: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioner",
            "validate",
            "bots",
            "tests/fixtures/manifests/app-missing",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "tests/fixtures/manifests/app-missing/app.yaml:1:1: error: app settings file is missing",
        "  hint: create it with `endpoint: local` to use the emulator, or a data center "
        "(cn, sg, sg-b, na, sa/sau) with appKey and appSecret",
        "bots/demo: 3 bots valid",
        "tests/fixtures/manifests/app-missing: 1 error in app.yaml",
    ]
    assert result.stderr == ""


def test_expand_files_validates_each_touched_app_folder_once(
    in_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    files = [
        "many-errors-sorted/a.yaml",
        "many-errors-sorted/b.yaml",
        "name-boolean/bot.yaml",
    ]
    assert main(["validate", "--expand-files", *files]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "many-errors-sorted: 5 errors in 2 of 2 bots",
        "name-boolean: 1 error in 1 of 1 bot",
    ]
    monkeypatch.chdir(REPO)
    assert main(["validate", "--expand-files", "bots/demo/app.yaml", "bots/demo"]) == 0
    assert capsys.readouterr().out == "bots/demo: 3 bots valid\n"
    assert main(["validate", "bots/demo/app.yaml"]) == 1
    assert "is a file; validate works on app folders" in capsys.readouterr().err


def test_the_summary_says_how_many_of_the_bots_have_errors(
    in_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    assert main(["validate", "errors-in-one-of-two"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "errors-in-one-of-two: 2 errors in 1 of 2 bots"
    )
