"""The pydantic models mirror the JSON Schemas: both give the same verdict on every fixture and
on Hypothesis-generated documents; defaults and secret-safe reprs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from provisioner.manifest import load_document
from provisioner.models import AppSettings, Auth, Bot, Integration
from provisioner.validate.schema import validator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "manifests"
DEMO = Path(__file__).resolve().parent.parent / "bots" / "demo"
MODELS: dict[str, type[BaseModel]] = {"bot": Bot, "app": AppSettings}


def schema_verdict(kind: str, value: Any) -> bool:
    return validator(kind).is_valid(value)  # type: ignore[arg-type]


def model_verdict(kind: str, value: Any) -> bool:
    try:
        MODELS[kind].model_validate(value)
    except ValidationError:
        return False
    return True


def all_manifests() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.y*ml")) + sorted(DEMO.glob("*.yaml"))


def test_there_are_fixtures_to_compare() -> None:
    assert len(all_manifests()) > 80


@pytest.mark.parametrize("path", all_manifests(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_schema_and_models_agree_on_every_fixture(path: Path) -> None:
    document = load_document(path, path.name)
    if not document.loaded:
        return
    kind = "app" if path.name in ("app.yaml", "app.yml") else "bot"
    assert schema_verdict(kind, document.value) == model_verdict(kind, document.value)


# --- Hypothesis: near-valid documents, one or more fields replaced by tricky values ----------

VALID_BOT: dict[str, Any] = {
    "userId": "bot-1",
    "name": "消息助手",
    "type": "Message AI",
    "profileUrl": "https://example.com/bot.png",
    "metadata": {"version": "1"},
    "integrations": [
        {
            "type": "webhook",
            "callbackUrl": "https://hooks.example.com/rc",
            "objectNames": ["RC:TxtMsg"],
            "events": ["message:private"],
        },
        {
            "type": "dify_chatflow",
            "callbackUrl": "https://api.dify.ai/v1",
            "stream": True,
            "auth": {"apiKey": "${DIFY_KEY}"},
        },
    ],
}
VALID_APP: dict[str, Any] = {
    "endpoint": "cn",
    "appKey": "key",
    "appSecret": "${RC_SECRET}",
    "rateLimit": 50,
    "state": {"backend": "file", "path": "state.json"},
}
TRICKY = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        -1,
        0.5,
        100,
        100.5,
        101,
        float("nan"),
        float("inf"),
        "",
        " ",
        "x",
        "a b",
        "bot\u0007",
        "bot\n",
        "tab\tname",
        "line\u2028separator",
        "next\u0085line",
        "form\x0cfeed",
        "<!-- provisioner:apply -->",
        "\u3000",
        "${X}",
        "${x-y}",
        "x" * 64,
        "x" * 65,
        "助" * 128,
        "助" * 129,
        "x" * 256,
        "https://" + "x" * 249,
        "https://example.com",
        "http://example.com/v1",
        "https://api.dify.ai/v1",
        "https://api.dify.ai/v1/",
        "https://api.dify.ai/v1/chat-messages",
        "ftp://x",
        "local",
        "cn",
        "sg-b",
        "sa",
        "sau",
        "SAU",
        "us",
        "http://127.0.0.1:8000",
        "http://localhost",
        "http://[::1]:1/x",
        "https://h/p q",
        "webhook",
        "dify_chat",
        "dify_completion",
        "dify_chatflow",
        "dify_workflow",
        "RC:TxtMsg",
        "RC:ImgMsg",
        "file",
        "s3",
        "git",
        "postgres",
        "origin",
        "state/branch.lock",
        "a..b",
        "Bad-Schema",
        "provisioner_state",
        "https://token@github.com/o/r.git",
        [],
        ["RC:TxtMsg"],
        ["RC:ImgMsg"],
        [1],
        [""],
        {},
        {"apiKey": "${K}"},
        {"apiKey": "literal"},
        {"k": "v"},
        {"k\u2028": "v"},
        {"k\t": "v"},
        {"k\n": "v"},
        {"k k": "v\u2028\u0085\n"},
        {"k": 1},
        {"": "v"},
        {"k" * 33: "v"},
        {f"k{i}": "v" for i in range(17)},
        {"backend": "file"},
        {"backend": "git"},
        {"backend": "postgres", "dsn": "${DSN}"},
        {"backend": "postgres"},
        {"x": 1},
    ]
)
BOT_PATHS = [
    ("userId",),
    ("name",),
    ("type",),
    ("profileUrl",),
    ("metadata",),
    ("metadata", "version"),
    ("integrations",),
    ("protect",),
    ("extra",),
    ("integrations", 0, "type"),
    ("integrations", 0, "callbackUrl"),
    ("integrations", 0, "objectNames"),
    ("integrations", 0, "events"),
    ("integrations", 0, "enabled"),
    ("integrations", 0, "auth"),
    ("integrations", 1, "type"),
    ("integrations", 1, "callbackUrl"),
    ("integrations", 1, "objectNames"),
    ("integrations", 1, "auth"),
    ("integrations", 1, "auth", "apiKey"),
    ("integrations", 1, "stream"),
    ("integrations", 1, "handleResponse"),
    ("integrations", 1, "extra"),
]
APP_PATHS = [
    ("endpoint",),
    ("appKey",),
    ("appSecret",),
    ("rateLimit",),
    ("state",),
    ("state", "backend"),
    ("state", "path"),
    ("state", "branch"),
    ("state", "remote"),
    ("state", "dsn"),
    ("state", "schema"),
    ("extra",),
]


def mutate(base: dict[str, Any], edits: list[tuple[tuple[Any, ...], Any, bool]]) -> Any:
    document = copy.deepcopy(base)
    for path, value, delete in edits:
        target = document
        for part in path[:-1]:
            try:
                target = target[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(target, dict):
                if delete:
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = value
    return document


def edits(paths: list[tuple[Any, ...]]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.tuples(st.sampled_from(paths), TRICKY, st.booleans()), max_size=3)


AGREEMENT = settings(max_examples=300, deadline=None)


@AGREEMENT
@given(edits(BOT_PATHS))
def test_schema_and_models_agree_on_generated_bots(changes: list[Any]) -> None:
    document = mutate(VALID_BOT, changes)
    assert schema_verdict("bot", document) == model_verdict("bot", document), document


@AGREEMENT
@given(edits(APP_PATHS))
def test_schema_and_models_agree_on_generated_app_settings(changes: list[Any]) -> None:
    document = mutate(VALID_APP, changes)
    assert schema_verdict("app", document) == model_verdict("app", document), document


def test_the_generators_reach_both_verdicts() -> None:
    assert schema_verdict("bot", VALID_BOT) and model_verdict("bot", VALID_BOT)
    assert schema_verdict("app", VALID_APP) and model_verdict("app", VALID_APP)
    assert not model_verdict("bot", mutate(VALID_BOT, [(("name",), False, False)]))
    local = {"endpoint": "local"}
    assert schema_verdict("app", local) and model_verdict("app", local)
    saudi = {**VALID_APP, "endpoint": "sau"}
    assert schema_verdict("app", saudi) and model_verdict("app", saudi)


def test_defaults_follow_the_api() -> None:
    bot = Bot.model_validate(VALID_BOT)
    webhook = bot.integrations[0]
    assert (webhook.enabled, webhook.stream, webhook.handleResponse) == (True, True, True)
    assert bot.protect is False
    assert AppSettings.model_validate({"endpoint": "local"}).state.backend == "file"
    assert Integration.model_validate({"type": "webhook", "callbackUrl": "https://x"}).auth is None


def test_reprs_never_show_secrets() -> None:
    assert "${DIFY_KEY}" not in repr(Auth(apiKey="${DIFY_KEY}"))
    assert "${RC_SECRET}" not in repr(AppSettings.model_validate(VALID_APP))


LINE_BREAKING = ["\t", "\n", "\r", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", LINE_BREAKING, ids=lambda char: f"U+{ord(char):04X}")
def test_user_id_name_and_metadata_keys_refuse_control_and_line_break_characters(
    char: str,
) -> None:
    for document in (
        mutate(VALID_BOT, [(("userId",), f"bot{char}x", False)]),
        mutate(VALID_BOT, [(("name",), f"Bot{char}x", False)]),
        mutate(VALID_BOT, [(("name",), f"Bot{char}", False)]),
        mutate(VALID_BOT, [(("metadata",), {f"key{char}": "v"}, False)]),
    ):
        assert not schema_verdict("bot", document), document
        assert not model_verdict("bot", document), document
    value = mutate(VALID_BOT, [(("metadata",), {"key": f"v{char}w", "k k": "spaced key"}, False)])
    assert schema_verdict("bot", value) and model_verdict("bot", value)
