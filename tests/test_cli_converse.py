"""`provisioner converse` end to end: the demo's guide on endpoint: local (context kept
between runs), a loopback emulator with a webhook receiver, and the real-service path."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner import converse as converse_module
from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator.dify.apps import DifyApp
from tests.dify_support import Misbehaving
from tests.test_emulator_messages import Receiver

REPO = Path(__file__).resolve().parent.parent
DEMO_KEYS = {
    "DIFY_ASSISTANT_KEY": "app-demo-assistant",
    "DIFY_COMPANION_KEY": "app-demo-companion",
    "DIFY_TRANSLATOR_KEY": "app-demo-translator",
}
UID = re.compile(r"\(message [0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}\)")
APP_KEY = "conv-app"
APP_SECRET = "conv-secret-0123456789"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(list(args))
    captured = capsys.readouterr()
    for key in DEMO_KEYS.values():
        assert key not in captured.out + captured.err
    return code, UID.sub("(message UID)", captured.out).splitlines(), captured.err


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "bots" / "demo", tmp_path / "bots" / "demo")
    monkeypatch.chdir(tmp_path)
    for name, value in DEMO_KEYS.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_the_guide_on_the_demo_keeps_the_context_between_runs(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "apply", "demo", "--auto-approve")[0] == 0
    assert run(capsys, "check", "demo")[0] == 0
    hook_note = (
        "note: webhook https://hooks.example.com/rongcloud/callback: not sent: the emulator "
        "delivers webhooks only to this machine (a host that resolves to loopback addresses "
        "only)"
    )
    assert run(capsys, "converse", "demo", "assistant-bot", "Hello") == (
        0,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to assistant-bot as provisioner-user (message UID).",
            "assistant-bot: 消息助手 (turn 1): you said “Hello”.",
            "Dify: 1 message recorded in one conversation.",
            hook_note,
        ],
        "",
    )
    assert run(capsys, "converse", "demo", "assistant-bot", "Do you remember me?") == (
        0,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to assistant-bot as provisioner-user (message UID).",
            "assistant-bot: 消息助手 (turn 2): you said “Do you remember me?”. Before that you "
            "said “Hello”.",
            "Dify: 2 messages recorded in one conversation.",
            hook_note,
        ],
        "",
    )
    code, lines, _ = run(capsys, "converse", "demo", "companion-bot", "hi", "--from", "alice")
    assert (code, lines[:3]) == (
        0,
        [
            "Registered alice (/user/getToken.json; the token is not shown).",
            "Sent to companion-bot as alice (message UID).",
            "companion-bot: 陪伴助手 (turn 1): you said “hi”.",
        ],
    )


def test_an_endpoint_variable_whose_value_is_local_is_the_emulator(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``endpoint: ${NAME}`` with NAME=local is the embedded emulator for converse too, as it
    is for plan and apply (the credentials it references need not be set)."""
    app_yaml = demo / "bots" / "demo" / "app.yaml"
    app_yaml.write_text(
        app_yaml.read_text("utf-8").replace(
            "\nendpoint: local\n",
            "\nendpoint: ${DEMO_ENDPOINT}\nappKey: ${DEMO_KEY}\nappSecret: ${DEMO_SECRET}\n",
        ),
        "utf-8",
    )
    monkeypatch.setenv("DEMO_ENDPOINT", "local")
    assert run(capsys, "apply", "demo", "--auto-approve")[0] == 0
    code, lines, err = run(capsys, "converse", "demo", "assistant-bot", "Hello")
    assert (code, lines[:3], err) == (
        0,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to assistant-bot as provisioner-user (message UID).",
            "assistant-bot: 消息助手 (turn 1): you said “Hello”.",
        ],
        "",
    )


def test_a_bot_not_applied_yet_or_unknown(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "converse", "demo", "assistant-bot", "Hello") == (
        1,
        [],
        "error: bot assistant-bot of app demo is not on the server yet\n"
        "  hint: run `provisioner apply demo` first\n",
    )
    assert run(capsys, "converse", "demo", "nobody", "Hello") == (
        1,
        [],
        "error: app demo has no bot 'nobody' in its manifests\n"
        "  hint: give one of its bots' userId: assistant-bot, companion-bot, translator-bot\n",
    )


def test_a_wrong_dify_key_fails_the_delivery(
    demo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFY_COMPANION_KEY", "app-wrong-companion")
    assert run(capsys, "apply", "demo", "--auto-approve")[0] == 0
    code, lines, err = run(capsys, "converse", "demo", "companion-bot", "hi")
    assert (code, lines) == (
        1,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to companion-bot as provisioner-user (message UID).",
        ],
    )
    assert err == (
        "error: dify_chat https://api.dify.ai/v1 (answered by the Dify stand-in) failed: Dify "
        "answered POST /chat-messages with HTTP 401 unauthorized: Access token is invalid\n"
    )
    assert "app-wrong-companion" not in err


# --- a loopback emulator of one's own ---------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    apps = [DifyApp("app-served-chat", "chat", name="Served")]
    with EmulatorServer(apps={APP_KEY: APP_SECRET}, dify_apps=apps) as server:
        folder = tmp_path / "bots" / "staging"
        folder.mkdir(parents=True)
        (folder / "app.yaml").write_text(
            f"endpoint: {server.url}\nappKey: ${{RC_KEY}}\nappSecret: ${{RC_SECRET}}\n",
            encoding="utf-8",
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("RC_KEY", APP_KEY)
        monkeypatch.setenv("RC_SECRET", APP_SECRET)
        monkeypatch.setenv("SERVED_KEY", "app-served-chat")
        yield server


def write_bot(root: Path, integrations: str) -> None:
    (root / "bots" / "staging" / "helper.yaml").write_text(
        "userId: helper\nname: Helper\ntype: AI\nprofileUrl: https://example.com/p.png\n"
        f"integrations:\n{integrations}",
        encoding="utf-8",
    )


def test_a_loopback_emulator_is_waited_on_too(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Receiver() as receiver:
        write_bot(
            tmp_path,
            f"  - {{type: webhook, callbackUrl: '{receiver.url}'}}\n"
            "  - {type: dify_chat, callbackUrl: 'https://api.dify.ai/v1', stream: false,"
            " auth: {apiKey: '${SERVED_KEY}'}}\n",
        )
        assert run(capsys, "apply", "staging", "--auto-approve")[0] == 0
        code, lines, err = run(capsys, "converse", "staging", "helper", "ping", "--from", "qa")
        assert len(receiver.requests) == 1
    assert (code, lines, err) == (
        0,
        [
            "Registered qa (/user/getToken.json; the token is not shown).",
            "Sent to helper as qa (message UID).",
            "helper: Served (turn 1): you said “ping”.",
            "Dify: 1 message recorded in one conversation.",
        ],
        "",
    )


def test_a_webhook_only_bot_has_no_reply(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Receiver() as receiver:
        write_bot(tmp_path, f"  - {{type: webhook, callbackUrl: '{receiver.url}'}}\n")
        assert run(capsys, "apply", "staging", "--auto-approve")[0] == 0
        assert run(capsys, "converse", "staging", "helper", "ping") == (
            0,
            [
                "Registered provisioner-user (/user/getToken.json; the token is not shown).",
                "Sent to helper as provisioner-user (message UID).",
                "(no reply: none of the bot's integrations stores one)",
            ],
            "",
        )


def test_waiting_gives_up_after_the_timeout(
    served: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Misbehaving({"chat-messages": "hang"}) as hanging:
        write_bot(
            tmp_path,
            f"  - {{type: dify_chat, callbackUrl: '{hanging.api_base}', stream: false,"
            " auth: {apiKey: '${SERVED_KEY}'}}\n",
        )
        assert run(capsys, "apply", "staging", "--auto-approve")[0] == 0
        code, lines, err = run(capsys, "converse", "staging", "helper", "hi", "--timeout", "0.3")
    assert (code, lines) == (
        1,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to helper as provisioner-user (message UID).",
        ],
    )
    assert err == (
        "error: the bot's integrations did not finish within 0.3 s\n"
        "  hint: raise --timeout, or check the emulator's /_emulator/conversation\n"
    )


def test_on_the_real_service_the_reply_goes_to_the_users_clients(
    served: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_bot(tmp_path, "  - {type: webhook, callbackUrl: 'https://hooks.example.com/x'}\n")
    assert run(capsys, "apply", "staging", "--auto-approve")[0] == 0
    monkeypatch.setattr(converse_module, "_is_emulator", lambda base: False)  # the seam
    assert run(capsys, "converse", "staging", "helper", "hi") == (
        0,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to helper as provisioner-user (message UID).",
            "The reply goes to provisioner-user's RongCloud clients (an app logged in as "
            "provisioner-user), not here; Dify's logs show the conversation too.",
        ],
        "",
    )


def test_missing_credentials(
    served: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_bot(tmp_path, "  - {type: webhook, callbackUrl: 'https://hooks.example.com/x'}\n")
    monkeypatch.delenv("RC_SECRET")
    assert run(capsys, "converse", "staging", "helper", "hi") == (
        1,
        [],
        "error: no credentials to send a message: RC_SECRET\n"
        "  hint: export the variables appKey and appSecret reference in app.yaml\n",
    )


def test_a_bot_whose_calls_are_not_made_says_why_there_is_no_reply(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_yaml = demo / "bots" / "demo" / "app.yaml"
    app_yaml.write_text(app_yaml.read_text("utf-8").split("\nemulator:")[0] + "\n", "utf-8")
    assert run(capsys, "apply", "demo", "--auto-approve")[0] == 0
    assert run(capsys, "converse", "demo", "companion-bot", "hi") == (
        0,
        [
            "Registered provisioner-user (/user/getToken.json; the token is not shown).",
            "Sent to companion-bot as provisioner-user (message UID).",
            "note: dify_chat https://api.dify.ai/v1: not sent: the emulator calls only this "
            "machine, and no Dify stand-in runs (emulator.dify in app.yaml, or emulator serve "
            "--dify-apps)",
            "(no reply: some of the bot's integrations were not called, see the notes)",
        ],
        "",
    )


def test_the_sender_is_registered_first_on_the_real_service_path_too(
    served: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_bot(tmp_path, "  - {type: webhook, callbackUrl: 'https://hooks.example.com/x'}\n")
    assert run(capsys, "apply", "staging", "--auto-approve")[0] == 0
    monkeypatch.setattr(converse_module, "_is_emulator", lambda base: False)  # the seam
    code, lines, _ = run(
        capsys, "converse", "staging", "helper", "hi", "--from", "bo", "--name", "Bo"
    )
    assert (code, lines[0]) == (0, "Registered bo (/user/getToken.json; the token is not shown).")
    users = httpx.get(f"{served.url}/_emulator/users", params={"appKey": APP_KEY}).json()["users"]
    assert [(u["userId"], u["name"]) for u in users] == [("bo", "Bo")]
