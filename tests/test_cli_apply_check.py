"""`provisioner apply --check`: the Dify pre-flight runs first; a bot whose integration fails
gets no API call and is reported failed with the finding, the rest of its app applies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator.dify.server import DifyStandIn
from tests.apply_support import APP_KEY, APP_SECRET, calls, live_bots
from tests.dify_support import APPS, KEYS, CheckWorkspace, at, enter


@pytest.fixture
def dify() -> Iterator[DifyStandIn]:
    with DifyStandIn(APPS) as running:
        yield running


@pytest.fixture
def ws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, dify: DifyStandIn
) -> CheckWorkspace:
    workspace = enter(tmp_path, monkeypatch, {"RC_KEY": APP_KEY, "RC_SECRET": APP_SECRET})
    workspace.app(endpoint=server.url)
    workspace.bot("good", kind="dify_chat", url=dify.api_base, key_var="DIFY_CHAT")
    return workspace


def apply(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["apply", "--auto-approve", "--check", *args])
    captured = capsys.readouterr()
    for key in KEYS.values():
        assert key not in captured.out + captured.err
    return code, captured.out, captured.err


def test_a_failing_bot_gets_no_call_and_the_rest_applies(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = ws.bot("bad", kind="dify_chatflow", url=dify.api_base, key_var="DIFY_CHAT")
    code, out, err = apply(capsys)
    assert code == 4
    finding = (
        f"{at(bad, 'type')}: integrations[0].type: the Dify app is a Chatbot app (mode chat), "
        "but dify_chatflow calls Chatflow (advanced-chat) apps"
    )
    lines = out.splitlines()
    assert (
        f"{at(bad, 'type')}: error: integrations[0].type: the Dify app is a Chatbot app (mode "
        "chat), but dify_chatflow calls Chatflow (advanced-chat) apps" in lines
    )
    assert f"demo: + bad: create failed: refused by the pre-flight: {finding}" in lines
    assert "demo: + good: created" in lines
    assert "Apply incomplete for app demo: 1 applied, 1 failed, 0 not attempted." in lines
    assert set(live_bots(server)) == {"good"}
    assert calls(server, "create") == 1
    assert ws.root.joinpath(".provisioner/state/demo.json").is_file()
    assert "apply incomplete: 1 failed, 0 not attempted" in err


def test_once_fixed_the_bot_applies(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws.bot("late", kind="dify_chat", url=dify.api_base, key_var="DIFY_UNKNOWN")
    assert apply(capsys)[0] == 4
    ws.bot("late", kind="dify_chat", url=dify.api_base, key_var="DIFY_AGENT")
    code, out, _ = apply(capsys)
    assert code == 0
    assert "demo: + late: created" in out.splitlines()
    assert set(live_bots(server)) == {"good", "late"}


def test_a_failing_bot_with_nothing_to_change_still_fails_the_run(
    ws: CheckWorkspace,
    dify: DifyStandIn,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert apply(capsys)[0] == 0
    dify.set_faults(quota=True)
    writes = calls(server, "create") + calls(server, "update")
    code, out, _ = apply(capsys)
    assert code == 1
    assert out.splitlines()[-1] == "No changes."
    assert calls(server, "create") + calls(server, "update") == writes


def test_json_keeps_stdout_a_document(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ws.bot("bad", kind="dify_chat", url=dify.api_base, key_var="DIFY_OFF")
    code, out, err = apply(capsys, "--format", "json")
    assert code == 4
    assert (
        f"{at(bad, 'auth.apiKey')}: error: integrations[0].auth.apiKey: the Dify app is "
        "disabled" in err
    )
    [result] = json.loads(out)["applies"]
    failed = [change for change in result["changes"] if change["outcome"] == "failed"]
    assert [(c["userId"], c["error"]["type"]) for c in failed] == [("bad", "PreflightError")]
    assert failed[0]["error"]["hint"] == (
        "enable the app and its API in Dify (the app's API Access page)"
    )


def test_without_check_nothing_is_called_on_dify(
    ws: CheckWorkspace, dify: DifyStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.bot("bad", kind="dify_chatflow", url=dify.api_base, key_var="DIFY_CHAT")
    assert main(["apply", "--auto-approve"]) == 0
    assert dify.hits() == {}
