"""`provisioner check` end to end: the app's input form against what RongCloud fills, as Dify
checks each message (``max_length``, ``select`` options, ``number``), at file:line:col, and
the stand-in refusing the same messages with Dify's error body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisioner.cli import main
from provisioner.dify.protocol import (
    dify_request,
    private_message_callback,
    text_content,
)
from provisioner.emulator.dify.server import DifyStandIn
from tests.dify_support import APPS, KEYS, CheckWorkspace, at, enter


@pytest.fixture(scope="module")
def dify() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CheckWorkspace:
    workspace = enter(tmp_path, monkeypatch, {})
    workspace.app()
    return workspace


def check(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str], kind: str, key: str
) -> tuple[int, list[str], str]:
    file = ws.bot("b", kind=kind, url=dify.api_base, key_var=key)
    code = main(["check", "--timeout", "5"])
    captured = capsys.readouterr()
    assert captured.err == ""
    assert not any(value in captured.out for value in KEYS.values())
    return code, captured.out.splitlines(), file


def test_a_completion_query_capped_under_2000_characters_is_a_warning(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, file = check(ws, dify, capsys, "dify_completion", "DIFY_SHORT_QUERY")
    assert (code, lines) == (
        0,
        [
            f"{at(file)}: warning: integrations[0]: RongCloud fills the input query with the "
            "user's message, and the app caps it at 48 characters (max_length): Dify refuses "
            "every longer message (400 invalid_param)",
            "  hint: raise the max length of query in the app's input form (Dify: Orchestrate "
            "→ Variables) to at least 2000",
            'demo/b dify_completion: passed (1 warning; Text Generator app "Short")',
            "Checked 1 Dify integration: 1 passed, 0 failed.",
        ],
    )


def test_the_stand_in_refuses_the_longer_message_as_dify_does(dify: DifyStandIn) -> None:
    bot = {"userId": "b", "name": "Helper", "type": "Message AI"}
    callback = private_message_callback(
        bot,
        from_user="u",
        object_name="RC:TxtMsg",
        content=text_content("x" * 49),
        timestamp_ms=1,
    )
    body = dify_request("dify_completion", stream=True, callback=callback, user="u")
    headers = {"Authorization": f"Bearer {KEYS['DIFY_SHORT_QUERY']}"}
    answer = httpx.post(f"{dify.api_base}/completion-messages", json=body, headers=headers)
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "code": "invalid_param",
            "message": "query in input form must be less than 48 characters",
            "status": 400,
        },
    )


def test_selects_numbers_and_limits_rongcloud_cannot_meet(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, file = check(ws, dify, capsys, "dify_chat", "DIFY_NARROW")
    where = f"{at(file)}: "
    assert code == 1
    assert lines == [
        where + "warning: integrations[0]: RongCloud fills the input data_content with the"
        " user's message, and the app caps it at 100 characters (max_length): Dify refuses"
        " every longer message (400 invalid_param)",
        "  hint: raise the max length of data_content in the app's input form (Dify:"
        " Orchestrate → Variables) to at least 2000",
        where + "error: integrations[0]: RongCloud fills the input bot_name with the same value"
        " for every message to this bot, 6 characters, and the app caps it at 3 (max_length):"
        " Dify refuses every message",
        "  hint: raise the max length of bot_name in the app's input form",
        where + "error: integrations[0]: RongCloud fills the number input bot_type with the same"
        " value for every message to this bot, which is not a number: Dify refuses every"
        " message",
        "  hint: make bot_type a text input in the app's input form",
        where + "warning: integrations[0]: RongCloud fills the select input data_fromUserId with"
        " a value that changes with the sender's userId: only messages that make it exactly one"
        " of its options (alice, bob) pass, Dify refuses every other",
        "  hint: make data_fromUserId a text input in the app's input form",
        where + "error: integrations[0]: RongCloud fills the select input data_channelType with"
        " the same value for every message to this bot, which none of its options (GROUP) can"
        " be: Dify refuses every message",
        "  hint: make data_channelType a text input in the app's input form, or rename it so"
        " RongCloud does not fill it",
        where + "error: integrations[0]: RongCloud fills the select input timestamp with a value"
        " that changes with the time, which none of its options (soon) can be: Dify refuses"
        " every message",
        "  hint: make timestamp a text input in the app's input form, or rename it so RongCloud"
        " does not fill it",
        'demo/b dify_chat: failed (4 errors, 2 warnings; Chatbot app "Narrow")',
        "Checked 1 Dify integration: 0 passed, 1 failed.",
    ]


def test_app_yaml_declares_the_stand_ins_limits(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.app(
        extra="emulator:\n"
        "  dify:\n"
        "    - apiKey: app-local-text\n"
        "      mode: completion\n"
        "      inputs:\n"
        "        - {variable: query, maxLength: 48}\n"
        "        - {variable: tone, type: select, options: [calm], required: false}\n"
        "        - {variable: data_objectName, type: select, options: [RC:ImgMsg]}\n"
    )
    monkeypatch.setenv("LOCAL_KEY", "app-local-text")
    file = ws.bot("a", kind="dify_completion", url="https://api.dify.ai/v1", key_var="LOCAL_KEY")
    code = main(["check"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(": ", 3)[1:3] for line in lines[:4:2]] == [
        ["warning", "integrations[0]"],
        ["error", "integrations[0]"],
    ]
    assert lines[0].startswith(f"{at(file)}: warning: integrations[0]: RongCloud fills the input")
    assert "caps it at 48 characters" in lines[0]
    assert "select input data_objectName" in lines[2] and "(RC:ImgMsg)" in lines[2]


def test_a_bad_limit_in_app_yaml_is_a_manifest_error(
    ws: CheckWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app(
        extra="emulator:\n  dify:\n    - apiKey: k\n      mode: chat\n"
        "      inputs: [{variable: q, maxLength: 0}]\n"
    )
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "bots/demo/app.yaml:6:41: error: emulator.dify[0].inputs[0].maxLength: must be at least"
        " 1, got 0"
    )
