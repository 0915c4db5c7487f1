"""`provisioner probe` end to end against the emulator: in each mode the report it writes is
the profile the emulator was started with (profile → probe → the same observations), it
cleans up after itself (also after Ctrl-C), and it refuses a full app before any write.

The last tests send real signals to `python -m provisioner probe` running as a subprocess.
A :class:`Gate` in front of the emulator (which runs in this process) holds the probe's calls
to a path at known points: in its update experiment (bot A exists), then in the clean-up.
Nothing sleeps for a fixed time: the tests wait for calls to arrive at the gate."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.emulator import server as emulator_server
from provisioner.emulator.app import build_app
from provisioner.emulator.bots.profile import DEFAULT_OBSERVATIONS, GENERIC_1002, Profile
from provisioner.rongcloud import RongCloudClient
from provisioner.rongcloud.client import DELETE, QUERY, UPDATE
from provisioner.rongcloud.observations import NAMES
from provisioner.rongcloud.probe import PREFIX, Probe
from tests.apply_support import (
    APP_KEY,
    APP_SECRET,
    ENV,
    Workspace,
    client_for,
    emulator,
    enter_workspace,
    live_bots,
    subprocess_env,
    wait_until,
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


# --- real signals on a real process --------------------------------------------------------

GATE_POLL_SECONDS = 0.005
LEFT_BEHIND_HINT = (
    '; delete each with `provisioner api APP /v3/bot/delete.json \'{"userId": "ID"}\'`'
)


class Gate:
    """In front of the emulator's application: counts the bot API calls that arrive per path,
    holds the calls to a closed path until it is opened, and answers the calls to a
    ``swallowed`` path itself with success, doing nothing (a delete that deletes nothing).
    A held call whose client has gone does nothing once it goes on (the emulator sees the
    client gone before it reads the body)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived: Counter[str] = Counter()
        self._closed: set[str] = set()
        self.swallowed: set[str] = set()

    def arrived(self, path: str) -> int:
        with self._lock:
            return self._arrived[path]

    def close(self, *paths: str) -> None:
        with self._lock:
            self._closed.update(paths)

    def open(self) -> None:
        """Let every held call go on, and hold none from now on."""
        with self._lock:
            self._closed.clear()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] == "http" and path.startswith("/v3/bot/"):
                with self._lock:
                    self._arrived[path] += 1
                while self._is_closed(path):
                    await asyncio.sleep(GATE_POLL_SECONDS)
                if path in self.swallowed:
                    await JSONResponse({"code": 200})(scope, receive, send)
                    return
            await app(scope, receive, send)

        return gated

    def _is_closed(self, path: str) -> bool:
        with self._lock:
            return path in self._closed


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Gate, EmulatorServer]]:
    """An emulator behind a :class:`Gate`, and ``bots/demo/app.yaml`` in ``tmp_path`` for it."""
    gate = Gate()

    def gated_app(*args: Any) -> ASGIApp:
        return gate.wrap(build_app(*args))

    monkeypatch.setattr(emulator_server, "build_app", gated_app)
    with emulator() as server:
        Workspace(tmp_path, server.url).app()
        try:
            yield gate, server
        finally:
            gate.open()  # before the emulator stops


@contextmanager
def probing(root: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m provisioner probe demo --yes`` running in ``root`` (killed if a test fails
    before it ends)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "probe", "demo", "--yes"],
        cwd=root,
        env=subprocess_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def held_in_update(gate: Gate, process: subprocess.Popen[str]) -> None:
    """Wait until the probe is held in its update experiment: bot A exists, B does not yet."""
    gate.close(UPDATE)
    assert wait_until(lambda: gate.arrived(UPDATE) == 1 or process.poll() is not None)
    assert process.poll() is None, process.communicate()


def ctrl_c_twice(gate: Gate, process: subprocess.Popen[str], path: str) -> None:
    """Ctrl-C while the probe is held in its update experiment, and again while the clean-up's
    first call to ``path`` is held; the clean-up went on when that call arrives once more."""
    held_in_update(gate, process)
    gate.close(path)
    before = gate.arrived(path)
    process.send_signal(signal.SIGINT)
    assert wait_until(lambda: gate.arrived(path) == before + 1 or process.poll() is not None)
    process.send_signal(signal.SIGINT)
    assert wait_until(lambda: gate.arrived(path) == before + 2 or process.poll() is not None)
    gate.open()


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def probe_bots(server: EmulatorServer) -> list[str]:
    return sorted(user_id for user_id in live_bots(server) if user_id.startswith(PREFIX))


@pytest.mark.parametrize(
    ("sent", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stop_signal_mid_experiment_deletes_every_probe_bot(
    gated: tuple[Gate, EmulatorServer],
    tmp_path: Path,
    sent: signal.Signals,
    code: int,
    word: str,
) -> None:
    """Ctrl-C, or SIGTERM (a cancelled CI job), while bot A exists: the probe deletes it and
    exits with the signal's status, saying only that it was stopped."""
    gate, server = gated
    with probing(tmp_path) as process:
        held_in_update(gate, process)
        assert len(probe_bots(server)) == 1
        process.send_signal(sent)
        assert finished(process) == (code, "", f"\nerror: {word}\n")
    assert probe_bots(server) == []
    assert write_calls(server, kind="committed") == 2  # A created, A deleted


def test_a_second_ctrl_c_during_a_clean_up_delete_does_not_stop_it(
    gated: tuple[Gate, EmulatorServer], tmp_path: Path
) -> None:
    gate, server = gated
    with probing(tmp_path) as process:
        ctrl_c_twice(gate, process, DELETE)
        assert finished(process) == (130, "", "\nerror: interrupted\n")
    assert probe_bots(server) == []


def test_a_second_ctrl_c_during_the_clean_up_check_still_names_what_is_left(
    gated: tuple[Gate, EmulatorServer], tmp_path: Path
) -> None:
    """The server answers the clean-up's delete with success and keeps the bot; a second
    Ctrl-C arrives while the clean-up checks what is left: the bot left behind is named."""
    gate, server = gated
    gate.swallowed.add(DELETE)
    with probing(tmp_path) as process:
        ctrl_c_twice(gate, process, QUERY)
        code, out, err = finished(process)
    [bot_a] = probe_bots(server)
    assert (code, out) == (130, "")
    assert (
        err == f"error: probe bots left behind: {bot_a}{LEFT_BEHIND_HINT}\n\nerror: interrupted\n"
    )
