"""ruamel.yaml round trips for export --merge: byte-identical when nothing changes, only the
differing fields change otherwise, references/defaults/protect stay, and quoting that keeps
YAML 1.1 readers (PyYAML, how manifests load) reading strings as strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.export import roundtrip

FIXTURE = Path(__file__).parent / "fixtures" / "export" / "commented.yaml"
DEMO = Path(__file__).resolve().parent.parent / "bots" / "demo"


def exported(**changes: Any) -> dict[str, Any]:
    """What export makes of the bot in the fixture (defaults left out, its own reference)."""
    data: dict[str, Any] = {
        "userId": "assistant-bot",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {
                "type": "webhook",
                "callbackUrl": "https://hooks.example.com/rongcloud",
                "objectNames": ["RC:TxtMsg"],
                "events": ["message:private"],
            },
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "auth": {"apiKey": "${DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY}"},
            },
        ],
    }
    data.update(changes)
    return data


def merged(source: dict[str, Any], text: str | None = None) -> tuple[bool, str]:
    original = FIXTURE.read_text("utf-8") if text is None else text
    result = roundtrip.merged_text(original, roundtrip.load(original), source)
    return result is not None, original if result is None else result


def test_nothing_to_change_is_byte_identical() -> None:
    assert merged(exported()) == (False, FIXTURE.read_text("utf-8"))


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.yaml")), ids=lambda path: path.name)
def test_the_demo_manifests_round_trip_byte_identically(path: Path) -> None:
    text = path.read_text("utf-8")
    data = roundtrip.load(text)
    assert roundtrip.dump(data, layout=roundtrip.layout_of(data, text)) == text


def test_only_the_differing_field_changes_comments_stay() -> None:
    source = exported(name="消息助手 v2")
    source["integrations"][0]["events"] = ["message:private", "message:group"]
    changed, text = merged(source)
    assert changed
    original = FIXTURE.read_text("utf-8").splitlines()
    lines = text.splitlines()
    assert [(a, b) for a, b in zip(original, lines, strict=True) if a != b] == [
        ("name: 消息助手          # shown to users", "name: 消息助手 v2       # shown to users"),
        ('    events: ["message:private"]', "    events: [message:private, message:group]"),
    ]


def test_a_new_field_an_integration_gone_and_one_added() -> None:
    source = exported()
    source["integrations"] = [
        source["integrations"][1],
        {
            "type": "dify_chat",
            "callbackUrl": "https://dify.example.com/v1",
            "auth": {"apiKey": "x"},
        },
    ]
    source["integrations"][0] = {**source["integrations"][0], "handleResponse": False}
    changed, text = merged(source)
    assert changed
    value = yaml.safe_load(text)
    assert [item["type"] for item in value["integrations"]] == ["dify_chatflow", "dify_chat"]
    assert value["integrations"][0]["handleResponse"] is False
    assert value["integrations"][0]["stream"] is True  # a written-out default stays
    assert value["integrations"][0]["auth"] == {"apiKey": "${MY_OWN_DIFY_KEY}"}  # kept
    assert value["protect"] is True
    assert "# bump on every prompt change" in text


def test_a_field_the_server_no_longer_has_is_removed() -> None:
    source = exported()
    del source["metadata"]
    changed, text = merged(source)
    assert changed and "metadata" not in yaml.safe_load(text)


@pytest.mark.parametrize("text", ["no", "yes", "1", "1.5", "on", "null", "~", "0x1F", "2024-01-01"])
def test_strings_yaml_1_1_would_misread_are_quoted(text: str) -> None:
    dumped = roundtrip.dump({"name": text, "metadata": {"v": text}})
    assert yaml.safe_load(dumped) == {"name": text, "metadata": {"v": text}} or text == "2024-01-01"
    assert f'name: "{text}"' in dumped


def test_chinese_is_text_and_lists_of_names_are_inline() -> None:
    dumped = roundtrip.dump({"name": "翻译助手", "objectNames": ["RC:TxtMsg"]})
    assert dumped == "name: 翻译助手\nobjectNames: [RC:TxtMsg]\n"


def test_a_changed_manifest_keeps_its_own_layout() -> None:
    text = (
        "userId: assistant-bot\n"
        "name: helper  # shown to users\n"
        "integrations:\n"
        "- type: webhook\n"
        "  callbackUrl: https://hooks.example.com/rongcloud\n"
        "  objectNames: [RC:TxtMsg]\n"
    )
    source = yaml.safe_load(text) | {"name": "helper v2"}
    # the dash stays at column 0, the comment at its column
    assert merged(source, text) == (True, text.replace("helper  #", "helper v2 #"))
