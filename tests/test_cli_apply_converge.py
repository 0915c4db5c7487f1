"""Read-back after writes and the 1002 settle, end to end: `provisioner apply` against an
emulator whose profile patches on update, answers 1002 for duplicates and missing bots, or
does not return the apiKey."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator.bots.profile import GENERIC_1002, Profile
from provisioner.plan.canonical import api_payload
from provisioner.workspace import load_apps
from tests.apply_support import (
    ENV,
    Workspace,
    calls,
    client_for,
    emulator,
    enter_workspace,
    live_bots,
)

BOT = """userId: helper-bot
name: Helper
type: Message AI
profileUrl: https://example.com/robot.png
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
{object_names}{dify}"""
OBJECT_NAMES = "    objectNames: [RC:TxtMsg]\n"
DIFY = """  - type: dify_chatflow
    callbackUrl: https://api.dify.ai/v1
    auth: {apiKey: "${DIFY_KEY}"}
"""
PATCH = Profile().changed("test", update_omitted_fields="patch")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    profile: Profile = getattr(request, "param", Profile())
    with emulator(profile=profile) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    return enter_workspace(tmp_path, server.url, monkeypatch, {"NO_COLOR": "1", **ENV})


def write_bot(ws: Workspace, *, object_names: bool = True, dify: bool = True) -> None:
    text = BOT.format(object_names=OBJECT_NAMES if object_names else "", dify=DIFY if dify else "")
    (ws.root / "bots" / "demo" / "helper-bot.yaml").write_text(text, encoding="utf-8")


def apply(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["apply", "--auto-approve", *args])
    return code, capsys.readouterr().out


def plan_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["plan", "--format", "json"]) in (0, 2)
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


@pytest.mark.parametrize("server", [PATCH], indirect=True)
def test_a_field_the_server_kept_fails_as_not_converged_and_the_next_plan_is_exact(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    assert apply(capsys)[0] == 0
    write_bot(ws, object_names=False)
    code, out = apply(capsys)
    assert code == 4
    assert (
        "demo: ~ helper-bot: update failed: not converged: the server kept"
        " `integrations[webhook].objectNames: [RC:TxtMsg]` after the update"
    ) in out
    assert "Apply incomplete for app demo: 0 applied, 1 failed, 0 not attempted." in out
    recorded = ws.state().bots["helper-bot"].spec
    webhook = next(i for i in recorded["integrations"] if i["type"] == "webhook")
    assert webhook["objectNames"] == ["RC:TxtMsg"]  # what the server holds
    (plan,) = plan_json(capsys)["plans"]  # type: ignore[misc]
    (change,) = plan["changes"]
    assert change["action"] == "update"
    assert [field["path"] for field in change["fields"]] == ["integrations[webhook].objectNames"]
    assert plan["drift"] == []  # the refreshed live bot is what the state records


@pytest.mark.parametrize("server", [PATCH], indirect=True)
def test_an_integration_the_server_kept_is_removed_by_the_narrower_call(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    assert apply(capsys)[0] == 0
    write_bot(ws, dify=False)
    code, out = apply(capsys)
    assert code == 0, out
    assert (
        "demo: ~ helper-bot: updated (the server kept integration dify_chatflow after the"
        " update; removed with /v3/bot/integration/delete.json)"
    ) in out
    live = live_bots(server)["helper-bot"]
    assert [item.type for item in live.integrations or ()] == ["webhook"]
    assert calls(server, "integration/delete") == 1
    assert plan_json(capsys)["plans"][0]["changes"] == []  # type: ignore[index]


def test_a_replacing_server_converges_with_one_read(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    assert apply(capsys, "--no-refresh")[0] == 0
    assert calls(server, "get") == 1  # the read-back
    write_bot(ws, object_names=False, dify=False)
    code, out = apply(capsys, "--no-refresh")
    assert code == 0, out
    assert "demo: ~ helper-bot: updated\n" in out
    assert calls(server, "get") == 2 and calls(server, "integration/delete") == 0


@pytest.mark.parametrize("server", [PATCH], indirect=True)
def test_read_back_off_trusts_the_answers(
    ws: Workspace,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROVISIONER_READ_BACK", "off")
    write_bot(ws)
    assert apply(capsys, "--no-refresh")[0] == 0
    write_bot(ws, object_names=False)
    assert apply(capsys, "--no-refresh")[0] == 0  # the kept field goes unnoticed
    assert calls(server, "get") == 0


@pytest.mark.parametrize(
    "server",
    [Profile().changed("test", api_key_on_read=how) for how in ("absent", "masked")],
    indirect=True,
    ids=["absent", "masked"],
)
def test_an_api_key_the_server_hides_is_not_compared_and_said_so_once(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    (ws.root / "bots" / "demo" / "other-bot.yaml").write_text(
        BOT.format(object_names="", dify=DIFY).replace("helper-bot", "other-bot"), "utf-8"
    )
    code, out = apply(capsys, "--format", "json")
    assert code == 0, out
    (applied,) = json.loads(out)["applies"]
    notes = [change.get("note") for change in applied["changes"]]
    how = "does not return it" if server.profile.api_keys == "absent" else "returns it masked"
    assert notes == [f"auth.apiKey not compared: the server {how}", None]


GENERIC = Profile().changed("test", **GENERIC_1002)


@pytest.mark.parametrize("server", [GENERIC], indirect=True)
def test_a_1002_on_create_of_a_bot_already_there_is_settled_by_reading_back(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    with client_for(server) as client:
        client.create_bot(api_payload(app.bots[0], ENV))  # made outside this state
    code, out = apply(capsys, "--no-refresh")
    assert code == 0, out
    assert "demo: + helper-bot: created (already existed on the server; adopted)" in out


@pytest.mark.parametrize("server", [GENERIC], indirect=True)
def test_a_1002_on_delete_of_a_bot_already_gone_is_settled_by_reading_back(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_bot(ws)
    assert apply(capsys)[0] == 0
    with client_for(server) as client:
        client.delete_bot("helper-bot")  # deleted outside git
    ws.remove_bot("helper-bot")
    code, out = apply(capsys, "--no-refresh", "--allow-empty")
    assert code == 0, out
    assert "demo: - helper-bot: deleted (already absent on the server)" in out
