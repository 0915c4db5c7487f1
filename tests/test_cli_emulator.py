"""`provisioner emulator serve`, in-process through main() and as a real subprocess."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.cli import emulator_cmd, main
from provisioner.emulator import EmulatorServer
from provisioner.errors import ConfigError
from tests.test_emulator import Api, bot, signed_headers

URL_LINE = re.compile(r"^RongCloud bot API emulator listening on (http://127\.0\.0\.1:\d+)$")


@pytest.fixture(autouse=True)
def no_emulator_thread_left() -> Iterator[None]:
    """Every test here must stop what it started."""
    yield
    assert [t for t in threading.enumerate() if t.name == "provisioner-emulator"] == []


def run_serve(
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    while_serving: Callable[[EmulatorServer], Any],
) -> tuple[int, list[Any]]:
    """Run ``emulator serve`` in-process; ``while_serving`` replaces the wait for Ctrl-C."""
    results: list[Any] = []
    monkeypatch.setattr(
        emulator_cmd, "_wait_for_shutdown", lambda server: results.append(while_serving(server))
    )
    return main(["emulator", "serve", *args]), results


def test_serve_prints_url_and_credentials_and_answers_signed_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def call(server: EmulatorServer) -> dict[str, Any]:
        printed = capsys.readouterr().out.splitlines()
        match = URL_LINE.match(printed[0])
        assert match is not None, printed
        assert match.group(1) == server.url
        [(key, secret)] = server.apps.items()
        assert printed[1:] == [
            f"  app key:    {key}",
            f"  app secret: {secret}",
            "  database:   temporary (removed at exit)",
            f"  admin:      {server.url}/_emulator/stats, {server.url}/_emulator/faults",
            "Press Ctrl-C to stop.",
        ]
        with httpx.Client(base_url=match.group(1)) as client:
            return Api(client, key, secret).ok("query", {})

    code, results = run_serve(monkeypatch, ["--port", "0"], call)
    assert code == 0
    assert results == [{"code": 200, "bots": [], "total": 0, "hasNext": False}]
    assert capsys.readouterr().out == "emulator stopped\n"


def test_given_secret_is_not_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def call(server: EmulatorServer) -> int:
        with httpx.Client(base_url=server.url) as client:
            return Api(client, "cli-key", "cli-secret-value").post("query", {}).status_code

    code, results = run_serve(
        monkeypatch, ["--app-key", "cli-key", "--app-secret", "cli-secret-value"], call
    )
    out = capsys.readouterr().out
    assert (code, results) == (0, [200])
    assert "  app key:    cli-key\n  app secret: (as given)\n" in out
    assert "cli-secret-value" not in out


def test_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROVISIONER_EMULATOR_APP_SECRET", "env-secret")
    code, results = run_serve(monkeypatch, ["--app-key", "k"], lambda server: server.apps)
    assert (code, results) == (0, [{"k": "env-secret"}])
    assert "env-secret" not in capsys.readouterr().out


def test_fault_flags_and_mask_reach_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def call(server: EmulatorServer) -> list[Any]:
        [(key, secret)] = server.apps.items()
        with httpx.Client(base_url=server.url) as client:
            api = Api(client, key, secret)
            first = api.post("create", bot()).status_code
            api.ok("create", bot())
            [stored] = api.get("bot-1")
        return [first, stored["integrations"][1]["auth"]["apiKey"], server.faults, server.stats()]

    args = ["--burst-429", "1", "--mask-api-keys", "--latency-ms", "0.5", "--seed", "5"]
    args += ["--rate-limit", "50"]
    code, [[first, api_key, faults, stats]] = run_serve(monkeypatch, args, call)
    assert code == 0
    assert (first, api_key) == (429, "******")
    assert (faults.seed, faults.latency_ms, faults.burst_429) == (5, 0.5, 0)
    assert stats["limit"] == 50
    assert stats["faults"]["delayed"] == 3


def test_strict_signatures_flag_refuses_a_replayed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    def call(server: EmulatorServer) -> list[int]:
        [(key, secret)] = server.apps.items()
        headers = signed_headers(key, secret)
        with httpx.Client(base_url=server.url) as client:
            return [
                client.post("/v3/bot/query.json", json={}, headers=headers).status_code
                for _ in range(2)
            ]

    assert run_serve(monkeypatch, [], call) == (0, [[200, 200]])
    assert run_serve(monkeypatch, ["--strict-signatures"], call) == (0, [[200, 401]])


def test_random_undocumented_codes_flag_reaches_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def call(server: EmulatorServer) -> list[Any]:
        [(key, secret)] = server.apps.items()
        with httpx.Client(base_url=server.url) as client:
            api = Api(client, key, secret)
            api.ok("create", bot())
            duplicate = api.post("create", bot())
        return [server.faults.random_undocumented_codes, duplicate.status_code]

    args = ["--random-undocumented-codes", "--seed", "2"]
    assert run_serve(monkeypatch, args, call) == (0, [[True, 400]])


def test_db_keeps_the_app_and_bots_between_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "emulator.sqlite3"

    def create(server: EmulatorServer) -> dict[str, str]:
        [(key, secret)] = server.apps.items()
        with httpx.Client(base_url=server.url) as client:
            Api(client, key, secret).ok("create", bot())
        return server.apps

    def read(server: EmulatorServer) -> list[str]:
        [(key, secret)] = server.apps.items()
        with httpx.Client(base_url=server.url) as client:
            return [b["userId"] for b in Api(client, key, secret).get("bot-1")]

    assert run_serve(monkeypatch, ["--db", str(db)], create)[0] == 0
    first_out = capsys.readouterr().out
    code, [found] = run_serve(monkeypatch, ["--db", str(db)], read)
    assert (code, found) == (0, ["bot-1"])
    second_out = capsys.readouterr().out
    assert f"  database:   {db}\n" in second_out
    assert first_out.splitlines()[1] == second_out.splitlines()[1]  # same app key


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["--host", "0.0.0.0"],
            "error: --host 0.0.0.0 is not a loopback address; the emulator serves this "
            "machine only",
            "  hint: use --host 127.0.0.1, or add --allow-remote if you really mean to expose it",
        ),
        (
            ["--host", "example.com"],
            "error: --host example.com is not a loopback address; the emulator serves this "
            "machine only",
            "  hint: use --host 127.0.0.1, or add --allow-remote if you really mean to expose it",
        ),
        (
            ["--app-key", "k"],
            "error: --app-key and --app-secret go together",
            "  hint: give one --app-secret per --app-key, in the same order (or neither, to reuse"
            " the apps of --db or get a new one)",
        ),
    ],
)
def test_serve_refuses_bad_options(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
    hint: str,
) -> None:
    monkeypatch.delenv("PROVISIONER_EMULATOR_APP_SECRET", raising=False)
    assert main(["emulator", "serve", *args]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [message, hint]
    assert captured.out == ""


def test_serve_refuses_a_rate_above_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "serve", "--error-rate", "2"]) == 1
    assert "Invalid value for '--error-rate'" in capsys.readouterr().err


def test_serve_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert main(["emulator", "serve", "--port", str(port)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use",
        "  hint: choose another port, or 0 for a free one",
    ]


def _start_subprocess(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "provisioner", "emulator", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--app-key", "sub-key", "--app-secret", "sub-secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    match = URL_LINE.match(first)
    assert match is not None, (first, process.stderr.read() if process.stderr else "")
    while process.stdout.readline().strip() != "Press Ctrl-C to stop.":
        pass
    return process, match.group(1)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_as_a_subprocess_until_interrupted(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    process, url = _start_subprocess(tmp_path)
    try:
        with httpx.Client(base_url=url) as client:
            api = Api(client, "sub-key", "sub-secret")
            api.ok("create", bot())
            assert [b["userId"] for b in api.get("bot-1")] == ["bot-1"]
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == "emulator stopped\n"
    assert err == ""


def test_allow_remote_lifts_the_loopback_check() -> None:
    emulator_cmd._check_host("0.0.0.0", allow_remote=True)
    emulator_cmd._check_host("localhost", allow_remote=False)
    emulator_cmd._check_host("::1", allow_remote=False)
    with pytest.raises(ConfigError):
        emulator_cmd._check_host("192.0.2.1", allow_remote=False)


def test_emulator_help_lists_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--help"]) == 0
    out = capsys.readouterr().out
    assert "serve  Serve the emulator, print its URL and credentials, and run until" in out


def test_one_process_serves_several_apps(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def call(server: EmulatorServer) -> list[list[str]]:
        with httpx.Client(base_url=server.url) as client:
            Api(client, "staging", "staging-secret").ok("create", bot("bot-s"))
            Api(client, "production", "prod-secret").ok("create", bot("bot-p"))
            return [
                [b["userId"] for b in Api(client, key, secret).ok("query", {})["bots"]]
                for key, secret in server.apps.items()
            ]

    args = ["--app-key", "staging", "--app-key", "production"]
    args += ["--app-secret", "staging-secret", "--app-secret", "prod-secret"]
    assert run_serve(monkeypatch, args, call) == (0, [[["bot-s"], ["bot-p"]]])
    out = capsys.readouterr().out
    assert "  app key:    staging\n  app secret: (as given)\n" in out
    assert "  app key:    production\n  app secret: (as given)\n" in out


def test_secrets_of_several_apps_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISIONER_EMULATOR_APP_SECRET", "s1 s2")
    args = ["--app-key", "a", "--app-key", "b"]
    assert run_serve(monkeypatch, args, lambda server: server.apps) == (0, [{"a": "s1", "b": "s2"}])
    assert main(["emulator", "serve", "--app-key", "a", "--app-key", "a"]) == 1


def test_dify_apps_serve_a_stand_in_next_to_the_emulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apps = tmp_path / "dify.yaml"
    apps.write_text("- {apiKey: '${SERVE_KEY}', mode: chat, name: Pal}\n", encoding="utf-8")
    monkeypatch.setenv("SERVE_KEY", "app-serve-key-1")

    def call(server: EmulatorServer) -> Any:
        assert server.dify is not None
        with httpx.Client(base_url=server.dify.api_base) as client:
            return client.get("/info", headers={"Authorization": "Bearer app-serve-key-1"}).json()

    code, [info] = run_serve(monkeypatch, ["--dify-apps", str(apps)], call)
    assert (code, info["name"], info["mode"]) == (0, "Pal", "chat")
    out = capsys.readouterr().out
    assert re.search(
        r"^  Dify:       http://127\.0\.0\.1:\d+/v1 \(stand-in: Pal \(chat\)\)$", out, re.M
    )
    assert "app-serve-key-1" not in out


def test_bad_dify_apps_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apps = tmp_path / "dify.yaml"
    apps.write_text("- {apiKey: k, mode: robot}\n", encoding="utf-8")
    assert main(["emulator", "serve", "--dify-apps", str(apps)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {apps}: [0].mode: Input should be ")
    apps.write_text("- {apiKey: '${NOT_SET_ANYWHERE}', mode: chat}\n", encoding="utf-8")
    assert main(["emulator", "serve", "--dify-apps", str(apps)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: environment variable NOT_SET_ANYWHERE is not set"
    )


def test_the_dify_stand_in_on_its_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    apps = tmp_path / "dify.yaml"
    apps.write_text(
        "- {apiKey: app-own-1, mode: completion, name: Writer, inputs: [{variable: query}]}\n",
        encoding="utf-8",
    )
    results: list[Any] = []

    def call(stand_in: Any) -> None:
        with httpx.Client(base_url=stand_in.api_base) as client:
            headers = {"Authorization": "Bearer app-own-1"}
            results.append(client.get("/parameters", headers=headers).status_code)

    monkeypatch.setattr(emulator_cmd, "_wait_for_shutdown", call)
    assert main(["emulator", "dify", "--apps", str(apps)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"^Dify stand-in listening on http://127\.0\.0\.1:\d+/v1$", lines[0])
    assert lines[1:] == [
        "  Writer: mode completion, inputs query",
        "Press Ctrl-C to stop.",
        "Dify stand-in stopped",
    ]
    assert results == [200]
