"""A fleet in one run, end to end: what a run holds open is bounded by --concurrency, not by the
number of apps (threads read from /proc while the command runs; a low ``ulimit -n``); running
out of file descriptors is named; an exception in any thread reaches the run's error handling;
text output summarises beyond MANY_APPS apps.

The commands run as subprocesses (their own limits and threads) against an emulator on
loopback serving one app key per app.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.cli import main, thread_errors
from provisioner.emulator import EmulatorServer
from provisioner.errors import OUT_OF_FILES_HINT, StateError
from provisioner.models import MANY_APPS
from provisioner.state.codec import read_state_file
from tests.git_support import git, make_clone, make_origin

APPS = 40
"""More apps than the bounds below, so a run holding one thread or file per app fails them."""
BOT = """\
userId: {user_id}
name: Fleet bot
type: fleet
profileUrl: https://example.com/p.png
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
"""


@dataclass(frozen=True)
class Fleet:
    root: Path
    env: dict[str, str]
    server: EmulatorServer


def write_fleet(root: Path, url: str, apps: int) -> dict[str, str]:
    """``bots/app-NN/`` with one bot each and their own app key; the environment they need."""
    env = {}
    for number in range(apps):
        folder = root / "bots" / f"app-{number:03d}"
        folder.mkdir(parents=True)
        env[f"KEY_{number}"] = f"fleet-key-{number:03d}"
        env[f"SECRET_{number}"] = f"fleet-secret-{number:03d}"
        (folder / "app.yaml").write_text(
            f"endpoint: {url}\nappKey: ${{KEY_{number}}}\nappSecret: ${{SECRET_{number}}}\n",
            encoding="utf-8",
        )
        bot = BOT.format(user_id=f"bot-{number:03d}")
        (folder / "bot.yaml").write_text(bot, encoding="utf-8")
    return env


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    keys = {f"fleet-key-{number:03d}": f"fleet-secret-{number:03d}" for number in range(APPS)}
    with EmulatorServer(apps=keys, rate_limit=1000) as server:
        yield Fleet(tmp_path, write_fleet(tmp_path, server.url, APPS), server)


def limit_files(limit: int) -> Callable[[], None]:
    def apply_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply_limit


def start(fleet: Fleet, *args: str, files: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", *args],
        cwd=fleet.root,
        env={**os.environ, **fleet.env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_files(files) if files is not None else None,
    )


def peak_threads(process: subprocess.Popen[str]) -> tuple[int, int]:
    """The most threads /proc showed for ``process`` until it ended, and how many samples."""
    peak, samples = 0, 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            break
        peak = max(peak, int(status.split("Threads:")[1].split()[0]))
        samples += 1
        time.sleep(0.005)
    return peak, samples


def recorded(fleet: Fleet) -> int:
    """Apps whose state records their bot."""
    found = 0
    for number in range(APPS):
        raw = read_state_file(fleet.root / ".provisioner" / "state" / f"app-{number:03d}.json")
        found += raw is not None and f"bot-{number:03d}" in json.loads(raw)["bots"]
    return found


def test_an_apply_holds_threads_for_its_concurrency_not_for_its_apps(fleet: Fleet) -> None:
    process = start(fleet, "apply", "--auto-approve", "--concurrency", "2")
    peak, samples = peak_threads(process)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert samples > 10
    # main + 2 × 2 app lanes + 2 call workers + 2 recording threads, and a little room
    assert 3 <= peak <= 12 < APPS
    assert recorded(fleet) == APPS


def test_an_apply_of_more_apps_than_open_files_allowed_succeeds(fleet: Fleet) -> None:
    # the run holding one lock file, one connection and a rate limiter's event loop per
    # app needed about 4 descriptors per app: 160 here
    process = start(fleet, "apply", "--auto-approve", "--concurrency", "2", files=48)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert recorded(fleet) == APPS


def test_running_out_of_file_descriptors_is_named(fleet: Fleet) -> None:
    process = start(fleet, "apply", "--auto-approve", files=12)
    out, err = process.communicate(timeout=300)
    assert process.returncode != 0
    assert f"hint: {OUT_OF_FILES_HINT}" in err
    assert "permissions" not in err
    assert "may be down" not in err
    assert "Traceback" not in err + out


def test_an_error_from_running_out_of_files_says_so_whatever_wrapped_it() -> None:
    try:
        try:
            raise OSError(24, "Too many open files")
        except OSError as exc:
            raise StateError("x.json: cannot read the state file", hint="check it") from exc
    except StateError as error:
        assert error.hint == OUT_OF_FILES_HINT
    assert StateError("x", hint="check it").hint == "check it"


def test_an_exception_in_a_thread_goes_to_the_run_not_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with thread_errors(debug=False) as failed:
        thread = threading.Thread(target=lambda: 1 / 0, name="helper")
        thread.start()
        thread.join()
    assert [(name, type(error)) for name, error in failed] == [("helper", ZeroDivisionError)]
    assert capsys.readouterr().err == ""


def test_a_command_whose_thread_failed_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bots").mkdir()

    def failing_thread(*args: object, **kwargs: object) -> list[object]:
        thread = threading.Thread(target=lambda: 1 / 0, name="background")
        thread.start()
        thread.join()
        return []

    monkeypatch.setattr("provisioner.cli.plan_cmd.load_each", failing_thread)
    assert main(["plan", "--no-refresh"]) == 1
    err = capsys.readouterr().err
    assert "error: internal error in thread background (ZeroDivisionError)" in err
    assert "Traceback" not in err


def test_a_fleet_plan_and_apply_lead_with_a_table_and_name_the_unchanged_apps_once(
    tmp_path: Path,
) -> None:
    keys = {f"fleet-key-{number:03d}": f"fleet-secret-{number:03d}" for number in range(300)}
    with EmulatorServer(apps=keys, rate_limit=1000) as server:
        fleet = Fleet(tmp_path, write_fleet(tmp_path, server.url, 300), server)
        done = start(fleet, "apply", "--auto-approve", "--no-refresh", "--concurrency", "8")
        _, err = done.communicate(timeout=600)
        assert done.returncode == 0, err
        for number in (7, 150, 299):
            bot = fleet.root / "bots" / f"app-{number:03d}" / "bot.yaml"
            bot.write_text(bot.read_text().replace("Fleet bot", "Renamed"), encoding="utf-8")
        process = start(fleet, "plan", "--concurrency", "8")
        out, err = process.communicate(timeout=600)
        applied = start(fleet, "apply", "--auto-approve", "--concurrency", "8")
        applied_out, applied_err = applied.communicate(timeout=600)
    assert process.returncode == 0, err
    assert len((out + err).encode()) <= 15 * 1024
    assert out.startswith("Plan for 300 apps: 3 to update; 3 to show, 297 unchanged\n")
    assert "\n  app-007          0          0          0          0          1          0" in out
    [unchanged] = [line for line in out.splitlines() if line.startswith("Unchanged (297): ")]
    assert "app-000, app-001" in unchanged and "app-007" not in unchanged
    assert out.count("Plan for app ") == 3
    assert "planned 297 more apps: no changes" in err
    assert MANY_APPS < 300
    # apply: the same table and one line for the apps with nothing to do, then only the
    # changing apps' progress lines and summaries (an unchanged app has none)
    assert applied.returncode == 0, applied_err
    assert len((applied_out + applied_err).encode()) <= 15 * 1024
    assert applied_out.startswith(out.split("\n", 1)[0] + "\n")
    assert [line for line in applied_out.splitlines() if "app-000" in line] == [unchanged]
    assert applied_out.count("Apply complete for app ") == 3
    assert "app-007: ~ bot-007: updated\n" in applied_out
    assert "planned 297 more apps: no changes" in applied_err


def test_a_git_state_re_run_commits_only_for_the_app_that_changes(tmp_path: Path) -> None:
    # Before, every app's plan job took and released its lock: +54 commits on the state
    # branch for a re-run of 100 apps of which one changed, unchanged apps included.
    origin = make_origin(tmp_path)
    root = make_clone(origin, tmp_path / "repo")
    keys = {f"fleet-key-{number:03d}": f"fleet-secret-{number:03d}" for number in range(30)}
    with EmulatorServer(apps=keys, rate_limit=1000) as server:
        fleet = Fleet(root, write_fleet(root, server.url, 30), server)
        for app_yaml in (root / "bots").glob("*/app.yaml"):
            with app_yaml.open("a", encoding="utf-8") as settings:
                settings.write("state: {backend: git, branch: provisioner-state}\n")
        first = start(fleet, "apply", "--auto-approve", "--no-refresh")
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
        before = git(origin, "rev-parse", "provisioner-state").strip()
        bot = root / "bots" / "app-007" / "bot.yaml"
        bot.write_text(bot.read_text().replace("Fleet bot", "Renamed"), encoding="utf-8")
        again = start(fleet, "apply", "--auto-approve")
        out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "1 to update" in out
    added = git(origin, "log", "--format=%s", f"{before}..provisioner-state").splitlines()
    assert 1 <= len(added) <= 3, added
    assert all("app-007" in message and "app-006" not in message for message in added), added
    assert "unlock app-007" in added[0]
