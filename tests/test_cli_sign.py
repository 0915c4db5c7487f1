"""`provisioner sign`: headers and curl formats, and clear errors when env is missing."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.rongcloud.signing import signature


def parse_headers(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_sign_prints_headers_that_verify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", "s3cret-value")
    monkeypatch.setenv("RONGCLOUD_APP_KEY", "key-from-env")
    assert main(["sign"]) == 0
    out = capsys.readouterr().out
    headers = parse_headers(out)
    assert list(headers) == ["App-Key", "Nonce", "Timestamp", "Signature"]
    assert headers["App-Key"] == "key-from-env"
    assert headers["Signature"] == signature("s3cret-value", headers["Nonce"], headers["Timestamp"])
    assert "s3cret-value" not in out


def test_app_key_flag_wins_and_curl_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", "s3cret-value")
    monkeypatch.setenv("RONGCLOUD_APP_KEY", "key-from-env")
    assert main(["sign", "--app-key", "flag-key", "--format", "curl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "-H 'App-Key: flag-key' \\"
    assert [line.split(":")[0] for line in lines] == [
        "-H 'App-Key",
        "-H 'Nonce",
        "-H 'Timestamp",
        "-H 'Signature",
    ]
    assert lines[-1].endswith("'") and not lines[-1].endswith("\\")


def test_two_runs_use_different_nonces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", "s")
    main(["sign", "--app-key", "k"])
    main(["sign", "--app-key", "k"])
    first, second = capsys.readouterr().out.split("App-Key: k\n")[1:]
    assert parse_headers(first)["Nonce"] != parse_headers(second)["Nonce"]


def test_missing_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RONGCLOUD_APP_SECRET", raising=False)
    assert main(["sign", "--app-key", "k"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: environment variable RONGCLOUD_APP_SECRET is not set\n"
        "  hint: export RONGCLOUD_APP_SECRET=... (the App Secret from the RongCloud console); "
        "it is read only from the environment\n"
    )


def test_missing_app_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", "s")
    monkeypatch.delenv("RONGCLOUD_APP_KEY", raising=False)
    assert main(["sign"]) == 1
    assert capsys.readouterr().err == (
        "error: no app key given\n"
        "  hint: pass --app-key KEY or export RONGCLOUD_APP_KEY=... "
        "(the App Key from the console)\n"
    )


def test_sign_in_a_subprocess() -> None:
    env = {**os.environ, "RONGCLOUD_APP_SECRET": "sub-secret", "RONGCLOUD_APP_KEY": "sub-key"}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "sign"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    headers = parse_headers(result.stdout)
    assert headers["Signature"] == signature("sub-secret", headers["Nonce"], headers["Timestamp"])
    assert "sub-secret" not in result.stdout + result.stderr


def test_sign_subprocess_without_secret_exits_1() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RONGCLOUD_APP_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "sign", "--app-key", "k"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: environment variable RONGCLOUD_APP_SECRET is not set\n")
    assert "Traceback" not in result.stderr


def test_secret_with_a_trailing_newline_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RONGCLOUD_APP_SECRET", "s3cret-value\n")
    assert main(["sign", "--app-key", "k"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "error: the app secret contains a line break (CR or LF)\n"
        "  hint: set RONGCLOUD_APP_SECRET to the value from the RongCloud console: printable "
        "ASCII only (a value read from a file may end in a newline)\n",
    )


def test_secret_that_is_not_utf8_in_the_environment_is_a_clean_error() -> None:
    env = {key.encode(): value.encode() for key, value in os.environ.items()}
    env[b"RONGCLOUD_APP_SECRET"] = b"s3cret-\xff-value"  # decoded to a lone surrogate
    env[b"PYTHONUTF8"] = b"1"  # as on any UTF-8 locale, whatever this machine's is
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "sign", "--app-key", "k"],
        capture_output=True,
        env=env,  # type: ignore[arg-type]
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: the app secret contains a byte that is not valid UTF-8 (is the environment's "
        "locale UTF-8?)\n"
        "  hint: set RONGCLOUD_APP_SECRET to the value from the RongCloud console: printable "
        "ASCII only (a value read from a file may end in a newline)\n"
    )
    assert b"s3cret" not in result.stdout + result.stderr


# --- sign APP: the app's own references ---------------------------------------------------


def write_app(root: Path, app_yaml: str) -> None:
    folder = root / "bots" / "prod"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text(app_yaml, encoding="utf-8")


PROD = "endpoint: cn\nappKey: ${PROD_KEY}\nappSecret: ${PROD_SECRET}\n"


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROD_KEY", "prod-key")
    monkeypatch.setenv("PROD_SECRET", "prod-secret-value")
    monkeypatch.delenv("RONGCLOUD_APP_SECRET", raising=False)
    write_app(tmp_path, PROD)
    return tmp_path


def test_sign_app_uses_the_references_of_its_app_yaml(
    prod: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sign", "prod"]) == 0
    out = capsys.readouterr().out
    headers = parse_headers(out)
    assert headers["App-Key"] == "prod-key"
    assert headers["Signature"] == signature(
        "prod-secret-value", headers["Nonce"], headers["Timestamp"]
    )
    assert "prod-secret-value" not in out


def test_sign_app_prints_a_complete_curl_command(
    prod: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '{"page": 1, "name": "消息助手"}'
    assert main(["sign", "prod", "--format", "curl", "/v3/bot/query.json", body]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "curl -sS -X POST https://api.rong-api.com/v3/bot/query.json \\"
    assert lines[1] == "  -H 'App-Key: prod-key' \\"
    assert [line.split(":")[0] for line in lines[2:5]] == [
        "  -H 'Nonce",
        "  -H 'Timestamp",
        "  -H 'Signature",
    ]
    assert lines[5:] == [
        "  -H 'Content-Type: application/json' \\",
        """  --data-raw '{"page":1,"name":"消息助手"}'""",
    ]
    args = shlex.split(" ".join(line.rstrip("\\") for line in lines))
    assert args[:4] == ["curl", "-sS", "-X", "POST"]  # the shell reads it back as printed
    assert args[-1] == '{"page":1,"name":"消息助手"}'


def test_sign_app_curl_for_a_form_api(prod: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = '{"fromUserId": "u1", "toUserId": ["b1", "b2"], "content": {"content": "hi"}}'
    args = ["sign", "prod", "--format", "curl", "--form", "/message/private/publish.json", body]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4:] == [
        "  --data-urlencode fromUserId=u1 \\",
        "  --data-urlencode toUserId=b1 \\",
        "  --data-urlencode toUserId=b2 \\",
        """  --data-urlencode 'content={"content":"hi"}'""",
    ]


@pytest.mark.parametrize(
    ("args", "env", "message", "hint"),
    [
        (
            ["sign", "prod"],
            {"PROD_SECRET": None},
            "app prod: cannot sign without PROD_SECRET",
            "export PROD_SECRET=...",
        ),
        (
            ["sign", "nope"],
            {},
            "no app 'nope': neither bots/nope nor nope is a folder",
            "give an app name under bots/ or the path to an app folder",
        ),
        (
            ["sign", "/v3/bot/query.json"],
            {},
            "'/v3/bot/query.json' looks like an API path, not an app",
            "give the app first: provisioner sign APP --format curl PATH [JSON]",
        ),
        (
            ["sign", "prod", "--format", "curl", "/v3/bot/query.json", "{oops"],
            {},
            "the JSON argument is not JSON: line 1, column 2: Expecting property name enclosed"
            " in double quotes",
            'give one JSON object, e.g. \'{"page": 1, "pageSize": 20}\' (in single quotes in'
            " the shell)",
        ),
    ],
)
def test_sign_app_errors(
    prod: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str | None],
    message: str,
    hint: str,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
    assert main(args) == 1
    assert capsys.readouterr() == ("", f"error: {message}\n  hint: {hint}\n")


def test_sign_app_with_endpoint_local_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_app(tmp_path, "endpoint: local\n")
    assert main(["sign", "prod"]) == 1
    assert capsys.readouterr().err == (
        "error: app prod uses endpoint: local, the embedded emulator, which has no fixed address"
        " or secret to sign for\n"
        "  hint: call it with `provisioner api prod PATH`, or run `provisioner emulator serve`"
        " and sign for its app key\n"
    )


def test_sign_app_usage_errors(prod: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign", "prod", "--app-key", "k"]) == 1
    assert "give APP or --app-key, not both" in capsys.readouterr().err
    assert main(["sign", "prod", "/v3/bot/query.json"]) == 1
    assert "PATH is for --format curl" in capsys.readouterr().err
