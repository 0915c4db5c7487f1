"""`provisioner export` end to end against the emulator: the round trip (export -> validate
passes -> plan shows only adoptions -> apply makes no write call -> plan shows no changes) as
a Hypothesis property with plain and masked keys, --merge keeping a commented manifest
byte-identical, --secrets-to, and bad input with exact messages."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.rongcloud import BotPayload
from tests.apply_support import APP_KEY, APP_SECRET, client_for, write_calls

FIXTURE = Path(__file__).parent / "fixtures" / "export" / "commented.yaml"
CREDENTIALS = {"RONGCLOUD_KEY": APP_KEY, "RONGCLOUD_SECRET": APP_SECRET}
PLAIN_KEY = "app-plain-dify-key-5e1f"


def bot(user_id: str = "assistant-bot", **fields: Any) -> BotPayload:
    data: dict[str, Any] = {
        "userId": user_id,
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
                "auth": {"apiKey": PLAIN_KEY},
            },
        ],
    }
    data.update(fields)
    return BotPayload.model_validate(data)


def seed(server: EmulatorServer, *bots: BotPayload) -> None:
    with client_for(server) as client:
        for each in client.query_bots():
            client.delete_bot(each.userId)
        for each in bots:
            client.create_bot(each)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, value in {**CREDENTIALS, "PROVISIONER_RETRY_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def export_args(server: EmulatorServer, app: str = "demo", *extra: str) -> list[str]:
    return [
        "export",
        app,
        "--endpoint",
        server.url,
        "--app-key-var",
        "RONGCLOUD_KEY",
        "--app-secret-var",
        "RONGCLOUD_SECRET",
        *extra,
    ]


def round_trip(app: str, capsys: pytest.CaptureFixture[str], server: EmulatorServer) -> None:
    """validate passes -> plan: adoptions only -> apply: no write call -> plan: no changes."""
    capsys.readouterr()
    assert main(["validate", "--require-env", "--strict", f"bots/{app}"]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["plan", app, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plans"][0]
    assert {change["action"] for change in plan["changes"]} <= {"adopt"}
    assert [change["fields"] for change in plan["changes"]] == [[]] * len(plan["changes"])
    assert plan["drift"] == [] and plan["unmanaged"] == []
    writes = write_calls(server)
    assert main(["apply", app, "--auto-approve", "--format", "json"]) == 0
    assert write_calls(server) == writes
    capsys.readouterr()
    assert main(["plan", app, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["plans"][0]["changes"] == []


def load_dotenv(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {}
    for line in path.read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
            monkeypatch.setenv(name, value)
    return values


# --- the round trip --------------------------------------------------------------------------


def test_export_writes_app_yaml_manifests_and_the_secrets_file(
    workdir: Path,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(server, bot(), bot("translator.bot", name="翻译助手", metadata={}))
    assert main(export_args(server, "demo", "--secrets-to", "dify.env")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert PLAIN_KEY not in out
    assert out.splitlines() == [
        "Exported app demo: 2 bots",
        "  written schemas/bot.schema.json",
        "  written schemas/app.schema.json",
        "  written schemas/app-bundle.schema.json",
        "  written bots/demo/app.yaml",
        "  written bots/demo/assistant-bot.yaml",
        "  written bots/demo/translator.bot.yaml",
        "",
        "Set these variables (the Dify API keys the manifests reference):",
        "  DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY   demo/assistant-bot dify_chatflow",
        "  DIFY_DEMO_TRANSLATOR_BOT_CHATFLOW_KEY  demo/translator.bot dify_chatflow",
        "2 key(s) the API returned in plain text were saved to dify.env (mode 600); load them"
        " into the environment, keep the file out of git.",
        "Next: provisioner validate bots/demo && provisioner plan (adoptions only)",
    ]
    assert (workdir / "bots/demo/assistant-bot.yaml").read_text("utf-8") == (
        "# yaml-language-server: $schema=../../schemas/bot.schema.json\n"
        "# $schema: ../../schemas/bot.schema.json\n"
        "userId: assistant-bot\n"
        "name: 消息助手\n"
        "type: Message AI\n"
        "profileUrl: https://example.com/robot.png\n"
        "metadata:\n"
        '  version: "1"\n'
        "integrations:\n"
        "  - type: webhook\n"
        "    callbackUrl: https://hooks.example.com/rongcloud\n"
        "    objectNames: [RC:TxtMsg]\n"
        "    events: [message:private]\n"
        "  - type: dify_chatflow\n"
        "    callbackUrl: https://api.dify.ai/v1\n"
        "    auth:\n"
        "      apiKey: ${DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY}\n"
    )
    assert stat.S_IMODE((workdir / "dify.env").stat().st_mode) == 0o600
    assert load_dotenv(workdir / "dify.env", monkeypatch) == {
        "DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY": PLAIN_KEY,
        "DIFY_DEMO_TRANSLATOR_BOT_CHATFLOW_KEY": PLAIN_KEY,
    }
    round_trip("demo", capsys, server)
    for path in (workdir / "bots").rglob("*.yaml"):
        assert PLAIN_KEY not in path.read_text("utf-8")
        assert APP_SECRET not in path.read_text("utf-8")


@pytest.fixture
def masked_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(apps={APP_KEY: APP_SECRET}, mask_api_keys=True) as running:
        yield running


def test_masked_keys_must_come_from_dify(
    workdir: Path,
    masked_server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(masked_server, bot())
    assert main(export_args(masked_server, "demo", "--secrets-to", "dify.env")) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-4:] == [
        "Set these variables (the Dify API keys the manifests reference):",
        "  DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY  demo/assistant-bot dify_chatflow (masked by the"
        " API)",
        "1 key(s) are masked by the API: their values must come from Dify (each Dify app's API"
        " access page).",
        "Next: provisioner validate bots/demo && provisioner plan (adoptions only)",
    ]
    assert (workdir / "dify.env").read_text("utf-8").splitlines()[1] == (
        "# DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY: masked by the API; copy it from Dify"
        " (demo/assistant-bot dify_chatflow)"
    )
    monkeypatch.setenv("DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY", PLAIN_KEY)
    round_trip("demo", capsys, masked_server)


# --- the property ------------------------------------------------------------------------------

_TEXT = st.text(
    st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85\u2028\u2029"),
    min_size=1,
    max_size=40,
).filter(lambda text: text.strip() == text)
_NAME = st.one_of(_TEXT, st.sampled_from(["消息助手", "no", "1", "on", "null", "2024-01-01"]))
_USER_ID = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    st.sampled_from(["机器人", "bot.001", "APP", "app", "no"]),
)
_METADATA_KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,31}", fullmatch=True)
_METADATA_VALUE = st.one_of(_NAME, _TEXT.map(lambda text: (text * 4)[:128]))
_METADATA = st.dictionaries(_METADATA_KEY, _METADATA_VALUE, max_size=4)
_FULL_METADATA = st.dictionaries(_METADATA_KEY, _METADATA_VALUE, min_size=16, max_size=16)
"""RongCloud's limit: 16 pairs, keys up to 32 characters, values up to 128."""
_WORDS = st.lists(st.from_regex(r"[a-z]{1,8}:[a-z_]{1,8}", fullmatch=True), max_size=2)


@st.composite
def integrations(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = draw(
        st.lists(
            st.sampled_from(["webhook", "dify_chat", "dify_completion", "dify_chatflow"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    items = []
    for kind in kinds:
        dify = kind != "webhook"
        item: dict[str, Any] = {
            "type": kind,
            "callbackUrl": "https://api.dify.ai/v1" if dify else "https://h.example.com/cb",
            "enabled": draw(st.booleans()),
            "stream": draw(st.booleans()),
            "handleResponse": draw(st.booleans()),
            "events": draw(_WORDS),
            "objectNames": draw(
                st.sampled_from([[], ["RC:TxtMsg"]])
                if dify
                else st.lists(
                    st.sampled_from(["RC:TxtMsg", "RC:ImgMsg", "App:Custom"]), unique=True
                )
            ),
        }
        if dify:
            item["auth"] = {"apiKey": "app-" + draw(st.from_regex(r"[a-z0-9]{8}", fullmatch=True))}
        items.append(item)
    return items


@st.composite
def live_bots(draw: st.DrawFn) -> list[BotPayload]:
    user_ids = draw(st.lists(_USER_ID, min_size=1, max_size=3, unique_by=str.lower))
    bots = []
    for user_id in user_ids:
        metadata = draw(st.one_of(_METADATA, _FULL_METADATA))
        bots.append(
            BotPayload.model_validate(
                {
                    "userId": user_id,
                    "name": draw(_NAME),
                    "type": draw(_NAME),
                    "profileUrl": "https://example.com/"
                    + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
                    "metadata": metadata,
                    "integrations": draw(integrations()),
                }
            )
        )
    return bots


@pytest.mark.parametrize("masked", [False, True], ids=["plain-keys", "masked-keys"])
def test_the_round_trip_property(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    masked: bool,
) -> None:
    counter = iter(range(10_000))
    with EmulatorServer(apps={APP_KEY: APP_SECRET}, mask_api_keys=masked) as emulator:

        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(bots=live_bots())
        def check(bots: list[BotPayload]) -> None:
            app = f"app{next(counter)}"
            seed(emulator, *bots)
            secrets = workdir / f"{app}.env"
            assert main(export_args(emulator, app, "--secrets-to", str(secrets))) == 0, (
                capsys.readouterr()
            )
            dify = [i for each in bots for i in each.integrations if i.type != "webhook"]
            assert secrets.exists() == bool(dify)  # no key to write: no file left behind
            values = load_dotenv(secrets, monkeypatch) if dify else {}
            if masked and dify:
                assert values == {}
                for line in secrets.read_text("utf-8").splitlines()[1:]:
                    monkeypatch.setenv(line.split()[1].rstrip(":"), "any-value")
            round_trip(app, capsys, emulator)
            shutil.rmtree(workdir / "bots" / app)

        check()


# --- --merge -----------------------------------------------------------------------------------


def merge_workspace(workdir: Path, server: EmulatorServer) -> Path:
    folder = workdir / "bots" / "demo"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text(
        f"endpoint: {server.url}\nappKey: ${{RONGCLOUD_KEY}}\nappSecret: ${{RONGCLOUD_SECRET}}\n",
        "utf-8",
    )
    shutil.copy(FIXTURE, folder / "assistant.yaml")
    return folder


def test_merge_keeps_a_commented_manifest_byte_identical(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = merge_workspace(workdir, server)
    seed(server, bot(), bot("new-bot", name="新机器人"))
    before = (folder / "assistant.yaml").stat().st_mtime_ns
    assert main(["export", "demo", "--merge"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "Exported app demo: 2 bots",
        "  unchanged bots/demo/assistant.yaml",
        "  written bots/demo/new-bot.yaml",
    ]
    assert "  MY_OWN_DIFY_KEY                 demo/assistant-bot dify_chatflow" in lines
    assert (folder / "assistant.yaml").read_bytes() == FIXTURE.read_bytes()
    assert (folder / "assistant.yaml").stat().st_mtime_ns == before


def test_merge_changes_only_what_differs_and_reports_bots_gone(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = merge_workspace(workdir, server)
    (folder / "gone.yaml").write_text(
        FIXTURE.read_text("utf-8").replace("assistant-bot", "gone-bot"), "utf-8"
    )
    seed(server, bot(name="消息助手 v2"))
    assert main(["export", "demo", "--merge"]) == 0
    out = capsys.readouterr().out
    assert "  updated bots/demo/assistant.yaml\n" in out
    assert (
        "  ! bots/demo/gone.yaml: gone-bot is not on the server (file left in place: plan would"
        " create it; delete the file if the bot is gone for good)\n"
    ) in out
    changed = [
        (old, new)
        for old, new in zip(
            FIXTURE.read_text("utf-8").splitlines(),
            (folder / "assistant.yaml").read_text("utf-8").splitlines(),
            strict=True,
        )
        if old != new
    ]
    assert changed == [
        ("name: 消息助手          # shown to users", "name: 消息助手 v2       # shown to users")
    ]
    assert (folder / "gone.yaml").exists()


# --- bad input ---------------------------------------------------------------------------------


def expect_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str, hint: str
) -> None:
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err == f"error: {message}\n  hint: {hint}\n", err
    assert APP_SECRET not in out + err


def test_unknown_app_needs_an_endpoint(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expect_error(
        capsys,
        ["export", "nope"],
        "app nope: bots/nope/app.yaml does not exist",
        "pass --endpoint (local, a data center such as cn, or a base URL) so export writes it,"
        " with references for the App Key and Secret",
    )
    assert not (workdir / "bots").exists()


def test_unreachable_endpoint(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["export", "demo", "--endpoint", f"http://127.0.0.1:{port}"]
    args += ["--app-key-var", "RONGCLOUD_KEY", "--app-secret-var", "RONGCLOUD_SECRET"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert out.endswith("  written bots/demo/app.yaml\n")  # written first: fix and re-run
    assert err.startswith(
        f"error: app demo: could not connect to http://127.0.0.1:{port} for /v3/bot/query.json"
    )


def test_an_existing_secrets_file_is_refused_before_anything_is_written(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "dify.env").write_text("OLD=1\n", "utf-8")
    os.chmod(workdir / "dify.env", 0o644)
    expect_error(
        capsys,
        export_args(server, "demo", "--secrets-to", "dify.env"),
        "--secrets-to dify.env: the file already exists and is readable by others (mode 644)",
        "give a new file name (it is created with mode 600), or remove the old file once its"
        " values are where they belong",
    )
    assert not (workdir / "bots").exists()
    assert (workdir / "dify.env").read_text("utf-8") == "OLD=1\n"


def test_a_failed_export_leaves_no_secrets_file_behind(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["export", "demo", "--endpoint", f"http://127.0.0.1:{port}", "--secrets-to", "k.env"]
    args += ["--app-key-var", "RONGCLOUD_KEY", "--app-secret-var", "RONGCLOUD_SECRET"]
    assert main(args) == 1
    out, _ = capsys.readouterr()
    assert out.endswith("No Dify API key found: k.env was not kept.\n")
    assert not (workdir / "k.env").exists()


def test_existing_manifests_need_merge(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    merge_workspace(workdir, server)
    seed(server, bot())
    expect_error(
        capsys,
        ["export", "demo"],
        "app demo: bots/demo already holds bot manifests",
        "pass --merge to update them in place (comments and layout are kept), or export into a"
        " new app folder",
    )
    assert (workdir / "bots/demo/assistant.yaml").read_bytes() == FIXTURE.read_bytes()


def test_unset_credentials_for_a_new_app(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_error(
        capsys,
        ["export", "prod", "--endpoint", "cn"],
        "app prod: export needs the app's credentials to read its bots: RONGCLOUD_PROD_APP_KEY,"
        " RONGCLOUD_PROD_APP_SECRET not set",
        "export RONGCLOUD_PROD_APP_KEY=... RONGCLOUD_PROD_APP_SECRET=... (from the RongCloud"
        " console's App Key page), then run again",
    )


def test_a_manifest_that_is_not_yaml_stops_a_merge(
    workdir: Path, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = merge_workspace(workdir, server)
    (folder / "broken.yaml").write_text("userId: [\n", "utf-8")
    expect_error(
        capsys,
        ["export", "demo", "--merge"],
        "app demo: bots/demo/broken.yaml: cannot be merged into: ParserError",
        "`provisioner validate` shows what is wrong; fix or remove the file, then export again",
    )


def test_the_secrets_file_is_single_quoted_for_sh_and_read_back_by_env_file(
    workdir: Path,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = 'app-$HOME-it\'s-`id`-"q"-\\n'
    hostile = bot().wire()
    hostile["integrations"][1]["auth"]["apiKey"] = key
    seed(server, BotPayload.model_validate(hostile))
    assert main(export_args(server, "demo", "--secrets-to", "dify.env")) == 0
    name = "DIFY_DEMO_ASSISTANT_BOT_CHATFLOW_KEY"
    assert (workdir / "dify.env").read_text("utf-8").splitlines()[-1] == (
        f"{name}='app-$HOME-it'\\''s-`id`-\"q\"-\\n'"
    )
    sourced = subprocess.run(
        ["sh", "-c", f'set -a && . ./dify.env && set +a && printf %s "${name}"'],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout == key  # nothing expanded, the quote kept
    capsys.readouterr()
    args = ["--env-file", "dify.env"]
    assert main(["validate", "--require-env", *args, "bots/demo"]) == 0
    assert main(["plan", "demo", "--format", "json", *args]) == 0
    out, err = capsys.readouterr()
    plan = json.loads(out.split("\n", 1)[1])["plans"][0]
    assert [change["action"] for change in plan["changes"]] == ["adopt"]
    assert plan["changes"][0]["fields"] == []
    assert key not in out + err
    assert name not in os.environ  # the file's variables last one command
