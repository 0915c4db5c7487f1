"""export's pure parts: manifest mapping, secret and file names, the dotenv secrets file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.export.bots import (
    AppExport,
    SecretRef,
    create_secrets_file,
    file_stem,
    manifest_of,
    secret_name,
    write_secrets,
)
from provisioner.rongcloud.models import BotPayload


def live(**fields: object) -> BotPayload:
    data: dict[str, object] = {
        "userId": "assistant-bot",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "enabled": True,
                "stream": True,
                "handleResponse": False,
                "auth": {"apiKey": "app-plain"},
            },
            {"type": "webhook", "callbackUrl": "https://h.example.com", "enabled": False},
        ],
        "createdAt": 1,
        "updatedAt": 2,
    }
    data.update(fields)
    return BotPayload.model_validate(data)


def test_manifest_in_api_order_without_defaults_or_server_fields() -> None:
    exported = manifest_of(live(), "demo", set())
    assert exported.manifest == {
        "userId": "assistant-bot",
        "name": "消息助手",
        "type": "Message AI",
        "profileUrl": "https://example.com/robot.png",
        "metadata": {"version": "1"},
        "integrations": [
            {
                "type": "dify_chatflow",
                "callbackUrl": "https://api.dify.ai/v1",
                "handleResponse": False,
                "auth": {"apiKey": "${DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY}"},
            },
            {"type": "webhook", "callbackUrl": "https://h.example.com", "enabled": False},
        ],
    }
    (secret,) = exported.secrets
    assert (secret.name, secret.value) == ("DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY", "app-plain")
    assert "app-plain" not in repr(secret)
    assert list(exported.manifest) == [
        "userId",
        "name",
        "type",
        "profileUrl",
        "metadata",
        "integrations",
    ]


def test_a_masked_key_has_no_value_and_an_existing_reference_is_kept() -> None:
    bot = live(
        integrations=[
            {"type": "dify_chat", "callbackUrl": "https://x/v1", "auth": {"apiKey": "******"}}
        ]
    )
    exported = manifest_of(bot, "demo", set(), {"dify_chat": "MINE"})
    assert exported.manifest["integrations"][0]["auth"] == {"apiKey": "${MINE}"}
    assert exported.secrets == (SecretRef("MINE", "assistant-bot", "dify_chat", None),)


@pytest.mark.parametrize(
    ("app", "user_id", "kind", "name"),
    [
        ("demo", "assistant-bot", "dify_chatflow", "DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY"),
        ("prod-cn", "BOT.001", "dify_chat", "DIFY_PROD_CN_BOT_001_CHAT_KEY"),
        ("demo", "机器人", "dify_completion", "DIFY_DEMO_COMPLETION_KEY"),
        ("demo", "a", "webhook", "DIFY_DEMO_A_WEBHOOK_KEY"),
    ],
)
def test_secret_names(app: str, user_id: str, kind: str, name: str) -> None:
    assert secret_name(app, user_id, kind) == name


def test_secret_names_are_unique_within_an_app() -> None:
    taken: set[str] = set()
    first = manifest_of(live(userId="a-b"), "demo", taken).secrets[0].name
    second = manifest_of(live(userId="a_b"), "demo", taken).secrets[0].name
    assert (first, second) == ("DIFY_DEMO_A_B_CHATFLOW_KEY", "DIFY_DEMO_A_B_CHATFLOW_KEY_2")


def test_file_stems_are_safe_unique_and_never_app() -> None:
    taken: set[str] = set()
    stems = [file_stem(user_id, taken) for user_id in ["a/b", "A_b", ".hidden", "app", "机器人"]]
    assert stems == ["a_b", "A_b-2", "_hidden", "app-2", "___"]


def test_the_secrets_file_is_new_and_private(tmp_path: Path) -> None:
    path = tmp_path / "dify.env"
    file = create_secrets_file(path)
    result = AppExport("demo", tmp_path)
    result.secrets = [
        SecretRef("A_KEY", "a", "dify_chat", "app-1"),
        SecretRef("B_KEY", "b", "dify_chat", None),
        SecretRef("C_KEY", "c", "dify_chat", 'we"ird $value'),
    ]
    assert write_secrets(file, [result]) == (2, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text("utf-8").splitlines() == [
        "# Dify API keys exported by `provisioner export`. Keep this file secret.",
        "A_KEY=app-1",
        "# B_KEY: masked by the API; copy it from Dify (demo/b dify_chat)",
        "C_KEY='we\"ird $value'",
    ]


def test_a_secrets_file_without_any_key_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "dify.env"
    failed = AppExport("demo", tmp_path)
    assert write_secrets(create_secrets_file(path), [failed]) is None
    assert not path.exists()


@pytest.mark.parametrize(
    ("mode", "extra"), [(0o600, ""), (0o644, " and is readable by others (mode 644)")]
)
def test_an_existing_secrets_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int, extra: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "old.env"
    path.write_text("KEEP=1\n", "utf-8")
    os.chmod(path, mode)
    with pytest.raises(ConfigError) as caught:
        create_secrets_file(path)
    assert caught.value.message == f"--secrets-to old.env: the file already exists{extra}"
    assert path.read_text("utf-8") == "KEEP=1\n"
