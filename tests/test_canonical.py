"""Canonical forms: defaults filled, integrations ordered, secrets fingerprinted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.errors import ConfigError
from provisioner.models import Bot
from provisioner.plan.canonical import (
    UNKNOWN_FINGERPRINT,
    api_payload,
    canonical_live,
    canonical_spec,
    is_masked,
)
from provisioner.rongcloud.models import BotPayload
from provisioner.secrets import fingerprint

SALT = "salt-1"
ENV = {"DIFY_KEY": "app-secret-value", "HOOK_TOKEN": "tok"}


def make_bot(
    webhook_url: str = "https://hooks.example.com/x?token=${HOOK_TOKEN}", **overrides: Any
) -> Bot:
    data: dict[str, Any] = {
        "userId": "assistant-bot",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "integrations": [
            {
                "type": "webhook",
                "callbackUrl": webhook_url,
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
            },
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "stream": False,
                "auth": {"apiKey": "${DIFY_KEY}"},
            },
        ],
        "protect": True,
    }
    data.update(overrides)
    return Bot.model_validate(data)


def test_canonical_spec_fills_defaults_orders_integrations_and_fingerprints() -> None:
    assert canonical_spec(make_bot(), ENV, SALT) == {
        "userId": "assistant-bot",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {},
        "integrations": [
            {
                "type": "dify_chat",
                "callbackUrl": "https://api.dify.ai/v1",
                "enabled": True,
                "objectNames": [],
                "events": [],
                "stream": False,
                "handleResponse": True,
                "auth": {
                    "apiKey": {
                        "sensitive": fingerprint("app-secret-value", SALT),
                        "template": "${DIFY_KEY}",
                    }
                },
            },
            {
                "type": "webhook",
                "callbackUrl": {
                    "sensitive": fingerprint("https://hooks.example.com/x?token=tok", SALT),
                    "template": "https://hooks.example.com/x?token=${HOOK_TOKEN}",
                },
                "enabled": True,
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
                "stream": True,
                "handleResponse": True,
            },
        ],
    }


def test_canonical_spec_never_holds_a_secret_value() -> None:
    text = repr(canonical_spec(make_bot(), ENV, SALT))
    assert "app-secret-value" not in text and "tok" not in text.replace("token", "")


def test_canonical_spec_leaves_out_protect() -> None:
    assert "protect" not in canonical_spec(make_bot(), ENV, SALT)


def test_fingerprints_depend_on_salt_and_value() -> None:
    base = canonical_spec(make_bot(), ENV, SALT)
    assert canonical_spec(make_bot(), ENV, "other-salt") != base
    assert canonical_spec(make_bot(), {**ENV, "DIFY_KEY": "rotated"}, SALT) != base
    assert canonical_spec(make_bot(), dict(ENV), SALT) == base


def test_missing_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        canonical_spec(make_bot(), {"HOOK_TOKEN": "tok"}, SALT)
    assert caught.value.message == "environment variable DIFY_KEY is not set"


def test_api_payload_resolves_references_and_keeps_order() -> None:
    payload = api_payload(make_bot(), ENV)
    wire = payload.wire()
    assert wire["integrations"][0]["callbackUrl"] == "https://hooks.example.com/x?token=tok"
    assert wire["integrations"][1]["auth"] == {"apiKey": "app-secret-value"}
    assert wire["integrations"][1]["stream"] is False
    assert "protect" not in wire and "app-secret-value" not in repr(payload)


def test_live_bot_of_an_apply_is_canonically_equal_to_the_spec() -> None:
    spec = canonical_spec(make_bot(), ENV, SALT)
    live = api_payload(make_bot(), ENV).model_copy(update={"createdAt": 1, "updatedAt": 2})
    assert canonical_live(live, SALT, spec) == spec


def test_live_bot_with_server_defaults_omitted_or_explicit_is_equal() -> None:
    spec = canonical_spec(
        make_bot(integrations=[{"type": "webhook", "callbackUrl": "https://h.example/u"}]), {}, SALT
    )
    sparse = BotPayload.model_validate(
        {
            "userId": "assistant-bot",
            "name": "消息助手",
            "type": "Message AI",
            "profileUrl": "https://example.com/robot.png",
            "integrations": [{"type": "webhook", "callbackUrl": "https://h.example/u"}],
        }
    )
    assert canonical_live(sparse, SALT, spec) == spec


def test_masked_live_key_keeps_the_recorded_fingerprint() -> None:
    spec = canonical_spec(make_bot(), ENV, SALT)
    live = api_payload(make_bot(), ENV).model_dump(mode="json")
    live["integrations"][1]["auth"]["apiKey"] = "******"
    assert canonical_live(BotPayload.model_validate(live), SALT, spec) == spec


def test_plain_live_key_is_fingerprinted_so_a_change_shows() -> None:
    spec = canonical_spec(make_bot(), ENV, SALT)
    live = api_payload(make_bot(), ENV).model_dump(mode="json")
    live["integrations"][1]["auth"]["apiKey"] = "changed-by-hand"
    seen = canonical_live(BotPayload.model_validate(live), SALT, spec)
    assert seen["integrations"][0]["auth"]["apiKey"] == {
        "sensitive": fingerprint("changed-by-hand", SALT),
        "template": "${DIFY_KEY}",
    }
    assert "changed-by-hand" not in repr(seen)


def test_live_api_key_is_fingerprinted_even_without_a_reference() -> None:
    live = api_payload(make_bot(), ENV).model_dump(mode="json")
    seen = canonical_live(BotPayload.model_validate(live), SALT, None)
    assert seen["integrations"][0]["auth"]["apiKey"] == {
        "sensitive": fingerprint("app-secret-value", SALT)
    }
    # a literal credential in a URL is never kept, but its fingerprint is
    assert seen["integrations"][1]["callbackUrl"] == (
        "https://hooks.example.com/x?token=(sensitive:"
        + fingerprint("tok", SALT).removeprefix("hmac-sha256:")[:12]
        + ")"
    )


def test_literal_url_credentials_are_masked_alike_in_spec_and_live() -> None:
    url = "https://bot:hunter2pass@hooks.example.com/x?access_token=t0ps3cret&page=2#top"
    bot = make_bot(webhook_url=url)
    spec = canonical_spec(bot, ENV, SALT)
    shown = spec["integrations"][1]["callbackUrl"]
    assert "hunter2pass" not in json.dumps(spec) and "t0ps3cret" not in json.dumps(spec)
    assert shown.startswith("https://bot:(sensitive:") and shown.endswith("&page=2#top")
    live = canonical_live(BotPayload.model_validate(api_payload(bot, ENV).wire()), SALT, spec)
    assert live == spec
    rotated = canonical_spec(make_bot(webhook_url=url.replace("t0ps3cret", "other")), ENV, SALT)
    assert rotated["integrations"][1]["callbackUrl"] != shown
    assert api_payload(bot, ENV).integrations[0].callbackUrl == url  # the wire keeps it


def test_masked_key_never_recorded_is_unknown() -> None:
    live = api_payload(make_bot(), ENV).model_dump(mode="json")
    live["integrations"][1]["auth"]["apiKey"] = "app-****"
    seen = canonical_live(BotPayload.model_validate(live), SALT, None)
    assert seen["integrations"][0]["auth"]["apiKey"] == {"sensitive": UNKNOWN_FINGERPRINT}


@pytest.mark.parametrize(
    ("value", "masked"),
    [("******", True), ("", True), ("app-***1234", True), ("app-abc", False), ("a*b", False)],
)
def test_is_masked(value: str, masked: bool) -> None:
    assert is_masked(value) is masked
