"""A canary Dify key never leaks from the Dify features: `check` (every format, --converse,
failures, a server that quotes the key back), `converse`, `apply --check`, `emulator serve
--dify-apps`, the emulator's admin answers, the stand-in's records and databases, logs.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from provisioner.cli import emulator_cmd, main
from provisioner.emulator import EmulatorServer
from tests.dify_support import FAST, Misbehaving
from tests.test_canary import assert_no_canary

CHAT_CANARY = "CANARY-dify-chat-5e1a77c2"
FLOW_CANARY = "CANARY-dify-flow-0c93b4d8"
APP_SECRET_CANARY = "CANARY-rc-secret-3f0e91"
CANARIES = (CHAT_CANARY, FLOW_CANARY, APP_SECRET_CANARY)
STAND_IN = (
    "emulator:\n"
    "  dify:\n"
    "    - {apiKey: '${STAND_IN_CHAT}', mode: chat, name: Chat,"
    " inputs: [{variable: data_content, maxLength: 1000}]}\n"
    "    - {apiKey: '${STAND_IN_FLOW}', mode: advanced-chat, name: Flow}\n"
)


def bot(root: Path, user_id: str, kind: str, url: str, key_var: str, app: str = "demo") -> None:
    (root / "bots" / app / f"{user_id}.yaml").write_text(
        f"userId: {user_id}\nname: Bot\ntype: AI\nprofileUrl: https://example.com/p.png\n"
        "integrations:\n"
        f"  - {{type: {kind}, callbackUrl: '{url}', auth: {{apiKey: '${{{key_var}}}'}}}}\n",
        encoding="utf-8",
    )


def check_clean(texts: list[str]) -> None:
    for number, text in enumerate(texts):
        for canary in CANARIES:
            assert canary not in text, f"{canary} leaked into output #{number}"


def test_no_dify_key_in_any_output_of_the_dify_features(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    keys = {"CHAT_KEY": CHAT_CANARY, "FLOW_KEY": FLOW_CANARY}
    stand_in = {"STAND_IN_CHAT": CHAT_CANARY, "STAND_IN_FLOW": FLOW_CANARY}
    for name, value in {**keys, **stand_in, **FAST}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "bots" / "demo").mkdir(parents=True)
    (tmp_path / "bots" / "demo" / "app.yaml").write_text("endpoint: local\n" + STAND_IN, "utf-8")
    bot(tmp_path, "chat-bot", "dify_chat", "https://api.dify.ai/v1", "CHAT_KEY")
    bot(tmp_path, "flow-bot", "dify_chatflow", "https://api.dify.ai/v1", "FLOW_KEY")
    texts: list[str] = []

    def run(*args: str) -> int:
        code = main(list(args))
        captured = capsys.readouterr()
        texts.extend([captured.out, captured.err])
        return code

    # Passing runs, every format, the conversation check, the guide's steps.
    for output in ("text", "json", "github"):
        assert run("--debug", "check", "--format", output) == 0
    assert run("--debug", "check", "--converse") == 0
    assert run("--debug", "check", "--converse", "--format", "json") == 0
    assert run("--debug", "apply", "--auto-approve", "--check") == 0
    assert run("--debug", "converse", "demo", "chat-bot", "hello") == 0
    assert run("--debug", "converse", "demo", "flow-bot", "hello") == 0
    assert (
        run("--debug", "converse", "demo", "chat-bot", "again", "--from", "al", "--name", "Al") == 0
    )
    assert "caps it at 1000 characters" in "".join(texts)  # the input findings ran
    assert "Dify: 1 message recorded in one conversation." in "".join(texts)

    # Failures: a key no stand-in app has, a server that quotes the key back (for check,
    # --converse, apply --check and the emulator's deliveries).
    monkeypatch.setenv("CHAT_KEY", CHAT_CANARY + "-rotated")
    assert run("--debug", "check", "--format", "json") == 1
    assert run("--debug", "apply", "--auto-approve", "--check") == 4  # the update is refused
    assert run("--debug", "apply", "--auto-approve") == 0
    assert run("--debug", "converse", "demo", "chat-bot", "hello") == 1
    monkeypatch.setenv("CHAT_KEY", CHAT_CANARY)
    behaviour = {"info": "echo-key", "chat-messages": "echo-key"}
    with Misbehaving(behaviour) as echo:
        bot(tmp_path, "echo-bot", "dify_chat", echo.api_base, "FLOW_KEY")
        assert run("--debug", "check") == 1
        assert run("--debug", "check", "--format", "github") == 1
        assert run("--debug", "apply", "--auto-approve", "--check", "--format", "json") == 4
        assert run("--debug", "apply", "--auto-approve") == 0
        assert run("--debug", "converse", "demo", "echo-bot", "hello") == 1

        # A subprocess too (tracebacks, if any, would go to its stderr).
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", "--debug", "check", "--converse"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        texts.extend([result.stdout, result.stderr])
        assert result.returncode == 1

    joined = "".join(texts)
    assert "(sensitive) refused" in joined  # the echoing server's words, redacted
    assert "answered by the Dify stand-in" in joined
    check_clean([*texts, caplog.text])
    for path in (tmp_path / ".provisioner").rglob("*"):
        if path.is_file() and path.suffix == ".json":
            assert_no_canary(path.read_text("utf-8"), str(path))


def test_no_key_in_the_emulators_admin_answers_or_its_serve_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apps = tmp_path / "dify.yaml"
    apps.write_text("- {apiKey: '${CHAT_KEY}', mode: chat, name: Chat}\n", encoding="utf-8")
    monkeypatch.setenv("CHAT_KEY", CHAT_CANARY)
    monkeypatch.setenv("PROVISIONER_EMULATOR_APP_SECRET", APP_SECRET_CANARY)
    answers: list[str] = []

    def exercise(server: EmulatorServer) -> None:
        from tests.test_emulator import Api, signed_headers

        with httpx.Client(base_url=server.url) as client:
            Api(client, "k", APP_SECRET_CANARY).ok(
                "create",
                {
                    "userId": "b",
                    "name": "B",
                    "type": "t",
                    "profileUrl": "https://e.com/p.png",
                    "integrations": [
                        {
                            "type": "dify_chat",
                            "callbackUrl": "https://api.dify.ai/v1",
                            "stream": False,
                            "auth": {"apiKey": CHAT_CANARY},
                        }
                    ],
                },
            )
            form = {"fromUserId": "u", "toUserId": "b", "objectName": "RC:TxtMsg"}
            form["content"] = json.dumps({"content": "hi"})
            headers = signed_headers("k", APP_SECRET_CANARY)
            client.post("/message/private/publish.json", data=form, headers=headers)
            for _ in range(200):
                view = client.get(
                    "/_emulator/conversation", params={"appKey": "k", "userId": "u", "botId": "b"}
                )
                if len(view.json()["messages"]) == 2:
                    break
            answers.append(view.text)
            answers.append(client.get("/_emulator/stats").text)
            form = {"userId": "u", "name": "U"}
            answers.append(client.post("/user/getToken.json", data=form, headers=headers).text)
            answers.append(client.get("/_emulator/users").text)
            assert server.dify is not None
            answers.append(json.dumps(server.dify.received()))
            conversation = view.json()["difyConversation"]["conversationId"]
            with httpx.Client(base_url=server.dify.api_base) as dify:
                auth = {"Authorization": f"Bearer {CHAT_CANARY}"}
                query = {"user": "u", "conversation_id": conversation}
                answers.append(dify.get("/messages", params=query, headers=auth).text)
                answers.append(dify.get("/conversations", params={"user": "u"}, headers=auth).text)

    monkeypatch.setattr(emulator_cmd, "_wait_for_shutdown", exercise)
    db = tmp_path / "emulator.sqlite3"
    args = ["emulator", "serve", "--app-key", "k", "--dify-apps", str(apps), "--db", str(db)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Chat (turn 1)" in answers[0]
    assert '"token"' in answers[2] and '"tokensIssued":1' in answers[3]
    assert '"query":"hi"' in answers[5] and '"has_more":false' in answers[6]
    check_clean([captured.out, captured.err, *answers])
