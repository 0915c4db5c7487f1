"""`provisioner probe` end to end against the emulator: in each mode the report it writes is
the profile the emulator was started with (profile → probe → the same observations), it
cleans up after itself (also after Ctrl-C), and it refuses a full app before any write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator.bots.profile import DEFAULT_OBSERVATIONS, GENERIC_1002, Profile
from provisioner.rongcloud import RongCloudClient
from provisioner.rongcloud.observations import NAMES
from provisioner.rongcloud.probe import Probe
from tests.apply_support import (
    APP_KEY,
    APP_SECRET,
    ENV,
    Workspace,
    client_for,
    emulator,
    enter_workspace,
    live_bots,
    write_calls,
)

EVERY_OTHER_WAY: dict[str, Any] = {
    "update_omitted_fields": "error:1002",
    "get_unknown_id": "error:1002",
    "delete_absent": "ok",
    "duplicate_create": "ok",
    "bot_quota": "ok",
    "two_integrations_same_type": "accepted",
    "numeric_metadata": "error:1002",
    "api_key_on_read": "masked",
    "body_limit_bytes": 5000,
    "nonce_reuse": "error:1004",
}
STILL_OTHER: dict[str, Any] = {
    **DEFAULT_OBSERVATIONS,
    "update_omitted_fields": "patch",
    "bot_quota": "error:4711",
    "api_key_on_read": "absent",
    "body_limit_bytes": None,
}
MODES = {
    "defaults": dict(DEFAULT_OBSERVATIONS),
    "patch": {**DEFAULT_OBSERVATIONS, "update_omitted_fields": "patch"},
    "generic-1002": {**DEFAULT_OBSERVATIONS, **GENERIC_1002},
    "every-other-way": EVERY_OTHER_WAY,
    "still-other": STILL_OTHER,
}


def report(observations: dict[str, Any]) -> dict[str, Any]:
    return {
        "format_version": 1,
        "endpoint": "https://api.example.com",
        "observations": observations,
    }


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatorServer]:
    observations = MODES[getattr(request, "param", "defaults")]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(report(observations)), encoding="utf-8")
    with emulator(profile=Profile.from_file(path)) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    return enter_workspace(tmp_path, server.url, monkeypatch, {"NO_COLOR": "1", **ENV})


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["probe", "demo", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("server", sorted(MODES), indirect=True)
def test_probe_reports_the_profile_the_emulator_runs(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = probe(capsys, "--yes", "--out", "probe.json")
    assert (code, err) == (0, "")
    written = json.loads(Path("probe.json").read_text(encoding="utf-8"))
    assert json.loads(out) == written
    assert written == {
        "format_version": 1,
        "endpoint": server.url,
        "observations": server.profile.observations,
    }
    assert list(written["observations"]) == list(NAMES)
    assert live_bots(server) == {}  # every probe bot deleted
    assert APP_SECRET not in out and "app-probe" not in out


def test_a_local_app_with_a_profile_answers_as_the_report_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "bots" / "demo"
    folder.mkdir(parents=True)
    (folder / "observed.json").write_text(json.dumps(report(EVERY_OTHER_WAY)), "utf-8")
    (folder / "app.yaml").write_text("endpoint: local\nemulator: {profile: observed.json}\n")
    code, out, err = probe(capsys, "--yes")
    assert (code, err) == (0, "")
    assert json.loads(out)["observations"] == EVERY_OTHER_WAY


def test_probe_refuses_without_yes(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = probe(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: probe creates and deletes bots named probe-<random> in this app\n"
        "  hint: run it against a sandbox app, and pass --yes to go ahead\n"
    )
    assert server.stats()["calls"] == {}


def test_probe_refuses_a_full_app_before_any_write(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with client_for(server) as client:
        for number in range(10):
            client.call("/v3/bot/create.json", bot_body(f"kept-{number}"))
    before = write_calls(server)
    code, out, err = probe(capsys, "--yes")
    assert (code, out) == (1, "")
    assert err == (
        "error: the app holds 10 bots: the probe needs room for 2 (an app holds at most 10)\n"
        "  hint: probe a sandbox app with at most 8 bots; nothing was created\n"
    )
    assert write_calls(server) == before
    assert len(live_bots(server)) == 10


@pytest.mark.parametrize("second_interrupt", [False, True], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_during_the_experiments_leaves_nothing_behind(
    ws: Workspace,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    second_interrupt: bool,
) -> None:
    """Ctrl-C arrives during the update experiment (bot A exists; more may); with
    ``second_interrupt`` another one arrives during the clean-up's first delete."""
    original = RongCloudClient.call
    interrupts = {"/v3/bot/update.json": 1, "/v3/bot/delete.json": int(second_interrupt)}

    def call(self: RongCloudClient, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
        if interrupts.get(path):
            interrupts[path] -= 1
            raise KeyboardInterrupt
        return original(self, path, body, **kwargs)

    monkeypatch.setattr(RongCloudClient, "call", call)
    code, out, _err = probe(capsys, "--yes")
    assert code == 130
    assert out == ""
    assert server.stats()["committed"][f"{APP_KEY} /v3/bot/create.json"] >= 1
    assert live_bots(server) == {}


def test_a_probe_bot_left_behind_is_named(
    ws: Workspace,
    server: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = RongCloudClient.call

    def call(self: RongCloudClient, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
        if path == "/v3/bot/delete.json" and body.get("userId") == created[0]:
            return {"code": 200}  # the delete of bot A "succeeds" but does nothing
        return original(self, path, body, **kwargs)

    created: list[str] = []
    monkeypatch.setattr(RongCloudClient, "call", call)
    monkeypatch.setattr(Probe, "_create_a", _recording(Probe._create_a, created))
    code, out, err = probe(capsys, "--yes")
    assert code == 1 and json.loads(out)["format_version"] == 1
    assert err.startswith(f"error: probe bots left behind: {created[0]}; delete each with")
    assert list(live_bots(server)) == created


def _recording(create_a: Any, created: list[str]) -> Any:
    def wrapped(self: Probe) -> str:
        created.append(self.bot_a)
        result: str = create_a(self)
        return result

    return wrapped


def bot_body(user_id: str) -> dict[str, Any]:
    return {
        "userId": user_id,
        "name": "Kept",
        "type": "x",
        "profileUrl": "https://example.com/p.png",
        "integrations": [{"type": "webhook", "callbackUrl": "https://hooks.example.com/x"}],
    }
