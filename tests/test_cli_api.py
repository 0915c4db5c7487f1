"""`provisioner api` end to end against the emulator: reads and writes with the app's own
credentials, JSON from the argument or standard input, error answers, and bad input
(unknown app, unreachable endpoint, malformed JSON, a bad path). Retries: reads only."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from tests.apply_support import (
    APP_SECRET,
    ENV,
    FAST_RETRIES,
    Workspace,
    enter_workspace,
    live_bots,
)

BOT = {
    "userId": "api-bot",
    "name": "接口机器人",
    "type": "Message AI",
    "profileUrl": "https://example.com/robot.png",
    "integrations": [{"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"}],
}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    return enter_workspace(tmp_path, server.url, monkeypatch, {**ENV, **FAST_RETRIES})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["api", *args])
    out, err = capsys.readouterr()
    assert APP_SECRET not in out + err
    return code, out, err


def test_a_write_then_a_read_print_the_answers(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "demo", "/v3/bot/create.json", json.dumps(BOT))
    assert (code, err) == (0, "")
    assert json.loads(out) == {"code": 200}
    body = '{"page": 1, "pageSize": 20, "includeIntegration": true}'
    code, out, err = run(capsys, "demo", "/v3/bot/query.json", body)
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["total"] == 1 and answer["bots"][0]["name"] == "接口机器人"
    assert "接口机器人" in out  # Chinese as text, not \u escapes
    assert live_bots(server)["api-bot"].name == "接口机器人"


def test_the_body_comes_from_standard_input(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(BOT)))
    assert run(capsys, "demo", "/v3/bot/create.json") == (0, '{\n  "code": 200\n}\n', "")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"userIds": ["api-bot"]}'))
    code, out, _ = run(capsys, "demo", "/v3/bot/get.json", "-")
    assert (code, json.loads(out)["bots"][0]["userId"]) == (0, "api-bot")


def test_an_error_answer_exits_1_with_code_message_and_request_id(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "demo", "/v3/bot/delete.json", '{"userId": "nobody"}')
    assert (code, out) == (1, "")
    assert re.fullmatch(
        r"error: RongCloud rejected /v3/bot/delete\.json \(HTTP 404, code 1404\): [^\n]+"
        r" \(request id [0-9a-f]{32}\)\n",
        err,
    ), err


def test_only_reads_are_retried_after_a_5xx(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_faults(error_rate=1.0)
    code, _, err = run(capsys, "demo", "/v3/bot/query.json", "{}")
    assert code == 1 and "HTTP 500, code 1000" in err
    assert server.stats()["faults"]["errors"] == 5  # every attempt, then the error
    code, _, err = run(capsys, "demo", "/v3/bot/create.json", json.dumps(BOT))
    assert code == 1
    assert err.startswith("error: /v3/bot/create.json to http://127.0.0.1:")
    assert " answered HTTP 500 (request id " in err
    assert server.stats()["faults"]["errors"] == 6  # sent once: it may have taken effect


def test_unknown_app(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "nope", "/v3/bot/query.json", "{}") == (
        1,
        "",
        "error: no app 'nope': neither bots/nope nor nope is a folder\n"
        "  hint: give an app name under bots/ or the path to an app folder\n",
    )


def test_unreachable_endpoint(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws.url = f"http://127.0.0.1:{port}"
    ws.app()
    code, out, err = run(capsys, "demo", "/v3/bot/query.json", "{}")
    assert (code, out) == (1, "")
    assert err.startswith(
        f"error: could not connect to http://127.0.0.1:{port} for /v3/bot/query.json (ConnectError"
    )
    assert err.endswith(
        "  hint: check the endpoint in app.yaml and the network; RongCloud may be down\n"
    )


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["demo", "/v3/bot/query.json", '{"page": '],
            "the JSON argument is not JSON: line 1, column 10: Expecting value",
            'give one JSON object, e.g. \'{"page": 1, "pageSize": 20}\' (in single quotes in'
            " the shell)",
        ),
        (
            ["demo", "/v3/bot/query.json", "[1, 2]"],
            "the JSON argument is JSON but not an object (got list)",
            'give one JSON object: {"name": value, ...}',
        ),
        (
            ["demo", "https://api.rong-api.com/v3/bot/query.json", "{}"],
            "'https://api.rong-api.com/v3/bot/query.json' is not a RongCloud API path",
            "give the path from RongCloud's docs, starting with /, e.g. /v3/bot/query.json or"
            " /message/private/publish.json (the host comes from the app's endpoint)",
        ),
    ],
)
def test_bad_input(
    ws: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], message: str, hint: str
) -> None:
    assert run(capsys, *args) == (1, "", f"error: {message}\n  hint: {hint}\n")


def test_unset_credentials_and_a_broken_app_yaml(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RC_SECRET")
    assert run(capsys, "demo", "/v3/bot/query.json", "{}") == (
        1,
        "",
        "error: no credentials to refresh from the API: RC_SECRET\n"
        "  hint: export RC_SECRET=... (in CI: the PROVISIONER_SECRETS bundle),"
        " or pass --no-refresh to plan from the recorded state"
        " only\n",
    )
    monkeypatch.setenv("RC_SECRET", APP_SECRET)
    ws.app(extra="rateLimit: fast\n")
    code, out, err = run(capsys, "demo", "/v3/bot/query.json", "{}")
    assert (code, out) == (1, "")
    assert err == (
        "error: bots/demo/app.yaml has 1 error(s):\n"
        "  bots/demo/app.yaml:4:12: rateLimit: expected a number, got the string 'fast'\n"
        "  hint: fix them (`provisioner validate` shows the details), then run again\n"
    )


def test_a_broken_bot_manifest_does_not_stop_a_direct_call(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws.root / "bots/demo/broken.yaml").write_text("userId: [\n", "utf-8")
    assert run(capsys, "demo", "/v3/bot/query.json", "{}")[0] == 0


def test_local_endpoint_calls_the_embedded_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "demo"]) == 0
    capsys.readouterr()
    assert run(capsys, "demo", "/v3/bot/create.json", json.dumps(BOT)) == (
        0,
        '{\n  "code": 200\n}\n',
        "",
    )
    code, out, _ = run(capsys, "demo", "/v3/bot/query.json", "{}")
    assert (code, json.loads(out)["total"]) == (0, 1)


def test_dify_keys_in_an_answer_are_masked(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        **BOT,
        "integrations": [
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "k-1"},
            }
        ],
    }
    assert run(capsys, "demo", "/v3/bot/create.json", json.dumps(body))[0] == 0
    code, out, _ = run(capsys, "demo", "/v3/bot/get.json", '{"userIds": ["api-bot"]}')
    assert code == 0
    assert json.loads(out)["bots"][0]["integrations"][0]["auth"] == {"apiKey": "(sensitive)"}
