"""`provisioner state show|unlock` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.errors import LockedError
from provisioner.state import RecordedApp, RecordedBot, dumps_state
from provisioner.state.file.backend import FileBackend

SPEC = {
    "userId": "assistant-bot",
    "name": "消息助手",
    "integrations": [
        {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"},
        {"type": "dify_chat", "auth": {"apiKey": {"sensitive": "hmac-sha256:00ff"}}},
    ],
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bots" / "demo").mkdir(parents=True)
    (tmp_path / "bots" / "demo" / "app.yaml").write_text("endpoint: local\n", encoding="utf-8")
    return tmp_path


def write_state(workdir: Path) -> FileBackend:
    backend = FileBackend(workdir / ".provisioner" / "state" / "demo.json", "demo")
    state = RecordedApp(app="demo", lineage="lin-1", serial=0, salt="salt", bots={})
    state = state.with_bot("assistant-bot", RecordedBot(SPEC, server={"updatedAt": 1700000000}))
    state = state.with_bot("b", RecordedBot({"userId": "b", "name": "Beta"}, protect=True))
    backend.write(state, expected_serial=0)
    return backend


def test_show_text_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(workdir)
    assert main(["state", "show", "demo"]) == 0
    assert capsys.readouterr().out == (
        "App demo: 2 bot(s) recorded in .provisioner/state/demo.json (serial 2, lineage lin-1)\n"
        "\n"
        "USER ID        NAME      PROTECT  INTEGRATIONS        UPDATED AT\n"
        "assistant-bot  消息助手  no       webhook, dify_chat  2023-11-14T22:13:20Z\n"
        "b              Beta      yes      -                   -\n"
    )


def test_show_names_the_last_run_and_cannot_restyle_the_terminal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = FileBackend(workdir / ".provisioner" / "state" / "demo.json", "demo")
    state = RecordedApp(app="demo", lineage="lin-1", serial=0, salt="salt", bots={})
    state = state.with_bot("evil", RecordedBot({"userId": "evil", "name": "\x1b[2Jgone"}))
    backend.write(
        state.written_by("https://github.com/o/r/actions/runs/5", "p1"), expected_serial=0
    )
    assert main(["state", "show", "demo"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\u001b[2Jgone" in out
    assert out.splitlines()[1] == "Last written by https://github.com/o/r/actions/runs/5"


def test_show_json_has_no_salt(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(workdir)
    assert main(["state", "show", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (app,) = document["apps"]
    assert document["format_version"] == 1
    assert (app["app"], app["recorded"], app["lock"]) == ("demo", True, None)
    assert app["path"] == ".provisioner/state/demo.json"
    assert "salt" not in app["state"]
    assert app["state"]["bots"]["b"] == {
        "protect": True,
        "server": {},
        "spec": {"userId": "b", "name": "Beta"},
    }


def test_show_without_state(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "show"]) == 0
    assert capsys.readouterr().out == (
        "App demo: no recorded state (.provisioner/state/demo.json does not exist)\n"
    )


def test_show_names_the_lock_holder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = write_state(workdir)
    with backend.lock("provisioner apply"):
        assert main(["state", "show", "demo"]) == 0
    out = capsys.readouterr().out
    assert f"pid {os.getpid()} (provisioner apply) since " in out.splitlines()[1]
    assert out.splitlines()[1].startswith("Locked by ")


def test_show_corrupt_state_is_an_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = workdir / ".provisioner" / "state" / "demo.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 7}', encoding="utf-8")
    assert main(["state", "show", "demo"]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: state version 7 is newer than this provisioner supports (1)\n"
        "  hint: upgrade provisioner; the file was left untouched\n"
    )


def test_show_with_nothing_to_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["state", "show"]) == 1
    assert capsys.readouterr().err == (
        "error: no apps under bots and no state files in .provisioner/state\n"
        "  hint: run from the repository root, or pass --bots-dir or an app name\n"
    )


def test_unlock_removes_a_stale_lock(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = write_state(workdir)
    stale = {
        "host": "ci-7",
        "pid": 4242,
        "user": "runner",
        "command": "provisioner apply",
        "started": "2026-01-01T00:00:00Z",
    }
    backend.path.with_name("demo.json.lock.json").write_text(json.dumps(stale))
    backend.path.with_name("demo.json.lock").write_text("")
    assert main(["state", "unlock", "demo"]) == 0
    assert capsys.readouterr().out == (
        "app demo: removed the lock held by runner@ci-7 pid 4242 (provisioner apply)"
        " since 2026-01-01T00:00:00Z\n"
    )
    assert sorted(p.name for p in backend.path.parent.iterdir()) == ["demo.json"]


def test_unlock_refuses_a_live_holder_without_force(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    with backend.lock("provisioner apply"):
        assert main(["state", "unlock", "demo"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: the state lock of app demo is held by a live run: ")
        assert err.endswith(
            "  hint: wait for it or stop it; pass --force only if you are sure it is gone\n"
        )
        assert main(["state", "unlock", "demo", "--force"]) == 0
        assert "removed the lock held by " in capsys.readouterr().out


def test_unlock_when_not_locked(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(workdir)
    assert main(["state", "unlock", "demo"]) == 0
    assert capsys.readouterr().out == "app demo: no lock holder recorded; lock files removed\n"


def test_a_second_run_fails_fast_naming_the_holder(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from provisioner.state.file.backend import FileBackend\n"
        "b = FileBackend(Path(sys.argv[1]), 'demo')\n"
        "with b.lock('provisioner apply'):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(backend.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(LockedError) as caught, backend.lock("provisioner apply"):
            pass  # pragma: no cover - never entered
        assert f"pid {holder.pid} (provisioner apply)" in caught.value.message
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", "state", "unlock", "demo"],
            capture_output=True,
            text=True,
            check=False,
            cwd=workdir,
        )
        assert result.returncode == 1
        assert f"pid {holder.pid} (provisioner apply)" in result.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    assert not backend.is_locked()


# --- pull, push, forget -------------------------------------------------------------------


def test_pull_prints_the_state_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = write_state(workdir)
    assert main(["state", "pull", "demo"]) == 0
    assert capsys.readouterr().out == backend.path.read_text(encoding="utf-8")


def test_pull_without_state_is_an_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "pull", "demo"]) == 1
    assert capsys.readouterr().err == (
        "error: app demo has no recorded state in .provisioner/state/demo.json\n"
        "  hint: check the app name and its state settings in app.yaml (`provisioner state"
        " show` lists what is recorded)\n"
    )


def pulled(capsys: pytest.CaptureFixture[str], tmp: Path, name: str = "pulled.json") -> Path:
    assert main(["state", "pull", "demo"]) == 0
    path = tmp / name
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    return path


def test_push_stores_a_newer_state_and_refuses_an_older_one(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    old = pulled(capsys, workdir, "old.json")
    newer = backend.read().with_bot("c", RecordedBot({"userId": "c"}))
    (workdir / "new.json").write_text(dumps_state(newer), encoding="utf-8")
    assert main(["state", "push", "demo", "new.json"]) == 0
    assert capsys.readouterr().out == (
        "app demo: stored serial 3 (lineage lin-1) in .provisioner/state/demo.json\n"
    )
    assert main(["state", "push", "demo", str(old)]) == 1
    assert capsys.readouterr().err == (
        "error: refusing to push this state of app demo to .provisioner/state/demo.json: it is"
        " older (serial 2, stored serial 3); pushing it would lose the record of c\n"
        "  hint: compare with `provisioner state pull demo`; pass --force to replace the stored"
        " state anyway\n"
    )
    assert main(["state", "push", "demo", str(old), "--force"]) == 0
    assert capsys.readouterr().out == (
        "app demo: stored serial 4 (lineage lin-1) in .provisioner/state/demo.json"
        " (forced over serial 3)\n"
    )
    assert sorted(backend.read().bots) == ["assistant-bot", "b"]
    assert main(["state", "push", "demo", "new.json"]) == 1  # serial 3 < 4 now
    capsys.readouterr()


def test_push_refuses_another_lineage_naming_what_would_be_lost(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(workdir)
    other = RecordedApp(app="demo", lineage="lin-2", serial=9, salt="s", bots={})
    other = other.with_bot("b", RecordedBot({"userId": "b", "name": "Changed"}))
    (workdir / "other.json").write_text(dumps_state(other), encoding="utf-8")
    assert main(["state", "push", "demo", "other.json"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: refusing to push this state of app demo to .provisioner/state/demo.json: it is"
        " another history (lineage lin-2, stored lin-1); pushing it would lose the record of"
        " assistant-bot, the recorded changes of b\n"
    )


def test_push_of_the_stored_state_or_of_another_app_or_of_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(workdir)
    same = pulled(capsys, workdir)
    assert main(["state", "push", "demo", str(same)]) == 0
    assert capsys.readouterr().out == (
        "app demo: .provisioner/state/demo.json already holds this state\n"
    )
    (workdir / "bots" / "other").mkdir()
    assert main(["state", "push", "other", str(same)]) == 1
    assert capsys.readouterr().err == (
        "error: the file holds the state of app demo, not of app other\n"
        "  hint: push it as `provisioner state push demo FILE`\n"
    )
    assert main(["state", "push", "demo", "missing.json"]) == 1  # a usage error, never 2
    assert "missing.json does not exist" in capsys.readouterr().err


def test_push_of_an_unsaved_state_removes_the_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    unsaved = workdir / ".provisioner" / "state-unsaved" / "demo.json"
    unsaved.parent.mkdir(parents=True)
    newer = backend.read().with_bot("c", RecordedBot({"userId": "c"}))
    unsaved.write_text(dumps_state(newer), encoding="utf-8")
    assert main(["state", "push", "demo", ".provisioner/state-unsaved/demo.json"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "app demo: removed .provisioner/state-unsaved/demo.json, which is stored now"
    )
    assert not unsaved.exists() and "c" in backend.read().bots


def test_forget_drops_records_in_one_write(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    assert main(["state", "forget", "demo", "b", "assistant-bot"]) == 0
    assert capsys.readouterr().out == (
        "app demo: forgot b, assistant-bot (serial 3); the bots stay on the server, and the"
        " next refresh lists them as unmanaged\n"
    )
    assert backend.read().bots == {} and backend.read().serial == 3
    assert main(["state", "forget", "demo", "ghost"]) == 1
    assert capsys.readouterr().err == (
        "error: app demo records no bot ghost (recorded: none)\n"
        "  hint: `provisioner state show APP` lists the recorded bots; nothing was changed\n"
    )


def test_show_lists_no_lock_record_as_an_app(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = write_state(workdir)
    backend.path.with_name("demo.json.lock.json").write_text("{}")
    backend.path.with_name("demo.json.lock").write_text("")
    backend.path.with_name(".demo.json.swap").write_text("{")
    (workdir / "bots" / "demo" / "app.yaml").unlink()
    (workdir / "bots" / "demo").rmdir()
    (workdir / "bots").rmdir()
    assert main(["state", "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("App demo: 2 bot(s) recorded in .provisioner/state/demo.json")
    assert "lock" not in out


@pytest.mark.parametrize("args", [["forget", "demo", "assistant-bot"], ["push", "demo", "s.json"]])
def test_state_writes_wait_with_lock_timeout_then_fail_naming_the_holder(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    backend = write_state(workdir)
    (workdir / "s.json").write_text(dumps_state(backend.read()), encoding="utf-8")
    with backend.lock("provisioner apply (ci run 7)"):
        assert main(["state", *args]) == 1  # without --lock-timeout: at once
        first = capsys.readouterr().err
        assert main(["state", *args, "--lock-timeout", "1s"]) == 1
        waited = capsys.readouterr().err
    assert first.startswith("error: the state of app demo is locked by ")
    assert "waiting" not in first
    assert waited.startswith("warning: the state of app demo is locked by ")
    assert "(provisioner apply (ci run 7))" in waited
    assert ", still after waiting 1 s (--lock-timeout)" in waited
