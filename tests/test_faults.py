"""Apply under faults: killed mid-run, dropped connections, 5xx and 429 storms, two runs at
once, Ctrl-C. The emulator runs in the test process; `python -m provisioner apply` runs as a
subprocess where the test needs to kill or interrupt it.

How "kill after the k-th call" is made robust without any hook in the product: the emulator
adds latency before it handles each request, and the apply runs with --concurrency 1, so
write calls are strictly one after another. The test polls the emulator's count of committed
writes; as soon as the run's first write is committed it raises the latency so far that the
run's next call waits in the emulator (a waiting request follows a change of latency), waits
a varying few milliseconds and sends SIGKILL. Depending on that delay the kill lands after the
commit but before the client saw the answer, after the answer but around the state write, or
while the next call waits in the emulator's latency. That held call then finds its client
gone and does nothing, so each run commits exactly one write, however slow the machine: each
re-run kills the next call, and a 10-bot apply is killed after each of its calls in turn.

Nothing here sleeps for a fixed time to let something happen: tests wait for a condition
(the emulator's counters, a process's exit) with generous bounds. The CLI's retries use a
10 ms backoff (``PROVISIONER_RETRY_BACKOFF``), so a 5xx storm costs no real backoff time.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer, FaultConfig
from tests.apply_support import (
    ENV,
    FAST_RETRIES,
    Workspace,
    calls,
    emulator,
    enter_workspace,
    live_bots,
    subprocess_env,
    wait_until,
    write_calls,
)

BOTS = [f"bot-{number:02d}" for number in range(10)]
KILL_DELAYS = [0.0, 0.005, 0.02, 0.05, 0.08]
"""Seconds between "the k-th write was committed" and SIGKILL."""
HOLD_MS = 120_000
"""Latency that keeps a run's next call waiting in the emulator until the test lowers it."""


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """An emulator that answers every outcome RongCloud does not document (duplicate userId,
    unknown bot, quota...) with a random undocumented code: apply may rely on none of them."""
    with emulator(faults=FaultConfig(random_undocumented_codes=True, seed=7)) as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    env = {"NO_COLOR": "1", **ENV, **FAST_RETRIES}
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, env)
    for user_id in BOTS:
        workspace.bot(user_id)
    return workspace


def start_apply(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "apply", "--auto-approve", *args],
        cwd=ws.root,
        env=subprocess_env(ws.root, FAST_RETRIES),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_state_matches_server(ws: Workspace, server: EmulatorServer) -> None:
    """The state parses, and every bot it records exists on the server."""
    if not ws.state_path().exists():
        return
    recorded = ws.state().bots
    assert set(recorded) <= set(live_bots(server))


def recorded_bots(ws: Workspace) -> set[str]:
    return set(ws.state().bots) if ws.state_path().exists() else set()


def committed_writes(server: EmulatorServer) -> int:
    """Creates, updates and deletes whose change is in the emulator's database."""
    return write_calls(server, kind="committed")


# --- SIGKILL after each call --------------------------------------------------------------


@pytest.mark.slow
def test_killed_after_each_call_in_turn_converges_without_duplicates(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    latency_ms = 200
    server.set_faults(latency_ms=latency_ms)
    kills = 0
    outputs: list[str] = []
    recorded_unprinted: set[str] = set()  # recorded by a run killed before it printed the line
    for run in range(len(BOTS)):
        before = committed_writes(server)
        recorded_before = recorded_bots(ws)
        proc = start_apply(ws, "--concurrency", "1")
        assert wait_until(lambda: committed_writes(server) > before or proc.poll() is not None)  # noqa: B023
        if proc.poll() is None:
            server.set_faults(latency_ms=HOLD_MS)  # the run's next call waits for the kill
            time.sleep(KILL_DELAYS[run % len(KILL_DELAYS)])
            proc.kill()
            kills += 1
        out, _err = proc.communicate(timeout=60)
        outputs.append(out)
        if proc.returncode == -signal.SIGKILL:
            newly = recorded_bots(ws) - recorded_before
            recorded_unprinted |= {user_id for user_id in newly if f" {user_id}: " not in out}
        # Release the killed run's held call: its client is gone, so nothing is committed.
        server.set_faults(latency_ms=latency_ms)
        assert committed_writes(server) == before + 1
        assert_state_matches_server(ws, server)
    assert kills >= len(BOTS) - 1

    server.set_faults(latency_ms=0)
    assert main(["apply", "--auto-approve"]) == 0
    outputs.append(capsys.readouterr().out)
    assert sorted(live_bots(server)) == BOTS
    assert sorted(ws.state().bots) == BOTS
    assert main(["plan", "--detailed-exitcode"]) == 0
    # No create was ever sent for a bot that already existed: a bot committed by a killed run
    # was seen by the next refresh and adopted without a call, never created a second time
    # (the emulator would have answered 1010, which apply reports as "already existed").
    log = "".join(outputs)
    assert "already existed on the server" not in log
    created = {line.split()[2].rstrip(":") for line in log.splitlines() if ": created" in line}
    adopted = {line.split()[2].rstrip(":") for line in log.splitlines() if ": adopted" in line}
    # A run killed between recording a bot and printing its line leaves that bot unprinted;
    # every other bot is printed as created or adopted, never both.
    assert created | adopted | recorded_unprinted == set(BOTS)
    assert not created & adopted
    assert not (created | adopted) & recorded_unprinted
    # On the server's side: each bot was created exactly once, and every create it received
    # was either committed or never read (its client killed first): none was refused.
    assert calls(server, "create", kind="committed") == len(BOTS)
    received = calls(server, "create")
    assert received == len(BOTS) + calls(server, "create", kind="disconnected")


# --- a create whose answer is lost --------------------------------------------------------


def test_commit_then_drop_on_create_is_settled_by_reading_back(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for user_id in BOTS[2:]:
        ws.remove_bot(user_id)
    server.set_faults(drop_after_commit=1.0, seed=1)
    assert main(["apply", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "demo: + bot-00: created (create outcome unknown; settled by reading back)" in out
    assert "demo: + bot-01: created (create outcome unknown; settled by reading back)" in out
    assert server.stats()["faults"]["drops"] == 2
    assert calls(server, "create") == 2
    assert calls(server, "get") == 3  # one settles each create, one reads both back

    server.set_faults(drop_after_commit=0.0)
    assert main(["plan", "--detailed-exitcode"]) == 0


def test_commit_then_drop_on_update_and_delete_is_settled(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for user_id in BOTS[3:]:
        ws.remove_bot(user_id)
    assert main(["apply", "--auto-approve"]) == 0
    ws.bot("bot-00", name="Renamed")
    ws.remove_bot("bot-01")
    server.set_faults(drop_after_commit=1.0)
    assert main(["apply", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert "demo: - bot-01: deleted (delete outcome unknown; settled by reading back)" in out
    assert "demo: ~ bot-00: updated (update outcome unknown; settled by reading back)" in out
    assert (calls(server, "update"), calls(server, "delete")) == (1, 1)
    server.set_faults(drop_after_commit=0.0)
    assert main(["plan", "--detailed-exitcode"]) == 0


# --- 5xx and 429 storms -------------------------------------------------------------------


@contextmanager
def burst_429_once_writing(server: EmulatorServer, count: int) -> Iterator[None]:
    """Answer the next ``count`` requests 429 once the run has started writing.

    The burst hits the apply's calls rather than the refresh, whose failure would end the run
    before any call (exit 1, nothing attempted), which is not what this test is about. The
    caller slows each request down a little so that the run is still writing when it lands.
    """
    done = threading.Event()
    before = write_calls(server)

    def arm() -> None:
        started = wait_until(lambda: write_calls(server) > before or done.is_set(), timeout=60)
        if started and not done.is_set():
            server.set_faults(burst_429=count)

    watcher = threading.Thread(target=arm, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        server.set_faults(burst_429=0)


@pytest.mark.slow
def test_errors_and_429_bursts_converge_over_runs_with_correct_summaries(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app(extra="rateLimit: 100\n")
    server.set_faults(error_rate=0.3, seed=7, latency_ms=20)
    codes = []
    for _ in range(8):
        with burst_429_once_writing(server, 2):
            code = main(["apply", "--auto-approve", "--concurrency", "1", "--format", "json"])
        captured = capsys.readouterr()
        assert code in (0, 4), captured.err
        codes.append(code)
        doc = json.loads(captured.out)
        for plan, result in zip(doc["plans"], doc["applies"], strict=True):
            counts = result["counts"]
            assert sum(counts.values()) == len(plan["changes"])
            assert counts["failed"] == sum(c["outcome"] == "failed" for c in result["changes"])
            for change in result["changes"]:
                if change["outcome"] == "failed":
                    assert change["error"]["endpoint"].startswith("/v3/bot/")
        if code == 4:
            assert "error: apply incomplete: " in captured.err
        server.set_faults(error_rate=0.0)
        assert_state_matches_server(ws, server)
        server.set_faults(error_rate=0.3)
        if code == 0:
            break
    assert codes[-1] == 0
    assert server.stats()["faults"]["errors"] > 0
    assert server.stats()["faults"]["bursts"] > 0
    server.set_faults(error_rate=0.0)
    assert sorted(live_bots(server)) == BOTS
    assert main(["plan", "--detailed-exitcode"]) == 0


# --- two applies at once, Ctrl-C ----------------------------------------------------------


def test_a_second_concurrent_apply_fails_fast_naming_the_holder(
    ws: Workspace, server: EmulatorServer
) -> None:
    server.set_faults(latency_ms=150)
    first = start_apply(ws, "--concurrency", "1")
    try:
        assert wait_until(lambda: committed_writes(server) > 0 or first.poll() is not None)
        server.set_faults(latency_ms=HOLD_MS)  # the first run waits in a call, holding the lock
        second = subprocess.run(
            [sys.executable, "-m", "provisioner", "apply", "--auto-approve"],
            cwd=ws.root,
            env=subprocess_env(ws.root, FAST_RETRIES),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # The first run is still held in a call: the second did not wait for the lock.
        assert first.poll() is None
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith("error: the state of app demo is locked by ")
        assert f" pid {first.pid} (provisioner apply) since " in second.stderr
        assert "provisioner state unlock demo" in second.stderr
    finally:
        server.set_faults(latency_ms=0)
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert sorted(live_bots(server)) == BOTS


def test_ctrl_c_finishes_the_call_in_flight_records_it_and_exits_130(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_faults(latency_ms=200)
    proc = start_apply(ws, "--concurrency", "1")
    assert wait_until(lambda: committed_writes(server) > 0 or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, out + err
    assert "Apply interrupted for app demo: " in out
    assert err.startswith("error: interrupted: calls in flight finished and were recorded;")
    assert "hint: re-run `provisioner apply` to finish" in err
    recorded = sorted(ws.state().bots)
    assert recorded == sorted(live_bots(server))  # in-flight call finished and was recorded
    assert 1 <= len(recorded) < len(BOTS)
    assert f"{len(recorded)} applied, 0 failed, {len(BOTS) - len(recorded)} not attempted" in out

    server.set_faults(latency_ms=0)
    assert main(["apply", "--auto-approve"]) == 0
    assert sorted(live_bots(server)) == BOTS
    assert calls(server, "create") == len(BOTS)
    capsys.readouterr()


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigterm_is_handled_like_ctrl_c(
    ws: Workspace,
    server: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    sent: signal.Signals,
    code: int,
) -> None:
    """A cancelled CI job gets SIGTERM: calls in flight finish and are recorded, the summary
    is printed, the lock is released, and the exit status says which signal it was."""
    server.set_faults(latency_ms=200)
    proc = start_apply(ws, "--concurrency", "1")
    assert wait_until(lambda: committed_writes(server) > 0 or proc.poll() is not None)
    proc.send_signal(sent)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == code, out + err
    assert "Apply interrupted for app demo: " in out
    assert err.startswith("error: interrupted: calls in flight finished and were recorded;")
    recorded = sorted(ws.state().bots)
    assert recorded == sorted(live_bots(server))
    assert 1 <= len(recorded) < len(BOTS)
    assert not ws.state_path().with_name("demo.json.lock.json").exists()  # lock released

    server.set_faults(latency_ms=0)
    assert main(["apply", "--auto-approve"]) == 0
    assert sorted(live_bots(server)) == BOTS
    capsys.readouterr()


class SilentServer:
    """A loopback TCP server that accepts connections and never answers (an API that hangs);
    it counts the connections it accepted."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted: list[object] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)  # kept open, never read, never answered

    def close(self) -> None:
        """Stop accepting, wait for the accepting thread (a connection it accepted as the
        listener closed is in ``accepted`` then), and close every connection."""
        with suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        self.socket.close()
        self.thread.join(timeout=10)
        for connection in self.accepted:
            connection.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "apps", "sent", "code"),
    [
        ("plan", 1, signal.SIGINT, 130),
        ("plan", 3, signal.SIGINT, 130),
        ("apply", 1, signal.SIGINT, 130),
        ("apply", 3, signal.SIGINT, 130),
        ("apply", 3, signal.SIGTERM, 143),
    ],
)
def test_ctrl_c_while_only_reads_hang_exits_at_once_without_waiting_for_them(
    tmp_path: Path, command: str, apps: int, sent: signal.Signals, code: int
) -> None:
    """A refresh waiting on an API that never answers is abandoned on the first Ctrl-C: each
    app's one connection is still unanswered when the process has exited 130 (waiting for the
    client's read timeout, 10 s, would have opened a second connection to retry)."""
    silent = SilentServer()
    try:
        names = [f"app{number}" for number in range(apps)]
        for name in names:
            folder = tmp_path / "bots" / name
            folder.mkdir(parents=True)
            (folder / "app.yaml").write_text(
                f"endpoint: {silent.url}\nappKey: ${{RC_KEY}}\nappSecret: ${{RC_SECRET}}\n",
                encoding="utf-8",
            )
            Workspace(tmp_path, silent.url).bot("bot-a", app=name)
        args = [command] + (["--auto-approve"] if command == "apply" else [])
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner", *args],
            cwd=tmp_path,
            env=subprocess_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: len(silent.accepted) == apps or proc.poll() is not None)
        proc.send_signal(sent)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        word = "interrupted" if code == 130 else "terminated"
        assert err == f"\nerror: {word}\n"  # click ends the ^C line first
        assert len(silent.accepted) == apps  # no retry: nothing waited for a timeout
        for name in names:
            assert not (tmp_path / ".provisioner" / "state" / f"{name}.json").exists()
    finally:
        silent.close()
