"""cli/output.py: what reaches stdout and stderr: no masked value, no encoding failure."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from provisioner.cli.output import echo_app_error, echo_error, guarded_streams, mask


def test_a_masked_value_never_reaches_either_stream(capsys: pytest.CaptureFixture[str]) -> None:
    with guarded_streams():
        mask(["t0ps3cret-value", ""])
        click.echo("token t0ps3cret-value in a line")
        echo_error("the server said t0ps3cret-value", hint="t0ps3cret-value again")
        print("and print: t0ps3cret-value")  # noqa: T201
    captured = capsys.readouterr()
    assert captured.out == "token (sensitive) in a line\nand print: (sensitive)\n"
    assert captured.err == "error: the server said (sensitive)\n  hint: (sensitive) again\n"
    assert "t0ps3cret" not in captured.out + captured.err


def test_the_mask_lasts_one_command(capsys: pytest.CaptureFixture[str]) -> None:
    with guarded_streams():
        mask(["first-secret"])
    with guarded_streams():
        click.echo("first-secret")
    assert capsys.readouterr().out == "first-secret\n"


def test_an_unencodable_character_is_escaped_not_a_crash() -> None:
    raw = io.BytesIO()
    ascii_stream = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    saved = sys.stdout
    sys.stdout = ascii_stream
    try:
        with guarded_streams():
            click.echo("bots/\udcff-app and 消息助手")
    finally:
        sys.stdout = saved
    assert raw.getvalue() == b"bots/\\udcff-app and \\u6d88\\u606f\\u52a9\\u624b\n"


def test_an_error_names_its_app_once(capsys: pytest.CaptureFixture[str]) -> None:
    echo_app_error("demo", "no credentials")
    echo_app_error("demo", "the state of app demo is locked")
    assert capsys.readouterr().err == (
        "error: app demo: no credentials\nerror: the state of app demo is locked\n"
    )


def test_an_app_folder_with_an_undecodable_name_is_reported_not_a_crash(tmp_path: Path) -> None:
    bad = os.fsdecode(b"bots/app-\xff")
    folder = tmp_path / bad
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text("endpoint: local\n", encoding="utf-8")
    (folder / "bot.yaml").write_text("userId: x\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVISIONER")}
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", "--no-refresh"],
        cwd=tmp_path,
        env={**env, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1
    err = result.stderr.decode("utf-8")
    assert err.startswith("error: app app-\\udcff: the manifests have ")
    assert "Traceback" not in err and "internal error" not in err


def test_bytes_pass_the_same_redaction_and_the_stream_stays_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with guarded_streams():
        mask(["t0ps3cret-value"])
        click.echo("complete t0ps3cret-value 消息".encode(), nl=False)
        with pytest.raises(TypeError):
            sys.stdout.write(b"")  # click's probe for a binary stream: this one is text
    assert capsys.readouterr().out == "complete (sensitive) 消息"
