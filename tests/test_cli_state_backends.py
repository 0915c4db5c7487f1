"""`provisioner state` on the git and postgres backends, and moving an app between backends
(pull with the old settings, edit app.yaml, push with the new ones)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.state import RecordedApp, RecordedBot, dumps_state
from provisioner.state.file.backend import FileBackend
from tests.git_support import make_clone, make_origin
from tests.postgres_support import PASSWORD_USER, Cluster, read_only_role
from tests.state_support import close_opened

CANARY = "CANARY-dsn-password-31f0"
GIT_STATE = "state: {backend: git, branch: provisioner-state, remote: origin}\n"
PG_STATE = 'state: {backend: postgres, dsn: "${PROVISIONER_STATE_DSN}", schema: %s}\n'


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    origin = make_origin(tmp_path)
    root = make_clone(origin, tmp_path / "laptop")
    monkeypatch.chdir(root)
    (root / "bots" / "demo").mkdir(parents=True)
    yield root
    close_opened()


def settings(root: Path, state: str) -> None:
    (root / "bots" / "demo" / "app.yaml").write_text("endpoint: local\n" + state, "utf-8")


def recorded() -> RecordedApp:
    state = RecordedApp(app="demo", lineage="lin-1", serial=0, salt="salt", bots={})
    state = state.with_bot("a", RecordedBot({"userId": "a", "name": "Alpha"}))
    return state.with_bot("b", RecordedBot({"userId": "b", "name": "Beta"}, protect=True))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def move(capsys: pytest.CaptureFixture[str], root: Path, new_state: str, name: str) -> str:
    """pull with the current settings, switch app.yaml to ``new_state``, push."""
    code, document, _ = run(capsys, "state", "pull", "demo")
    assert code == 0
    (root / name).write_text(document, encoding="utf-8")
    settings(root, new_state)
    code, out, err = run(capsys, "state", "push", "demo", name)
    assert code == 0, err
    return out


def test_moving_an_app_file_to_git_to_postgres_and_back_keeps_the_state(
    clone: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: Cluster,
    pg_schema: str,
) -> None:
    monkeypatch.setenv("PROVISIONER_STATE_DSN", pg_cluster.dsn())
    settings(clone, "")
    state = recorded()
    FileBackend(clone / ".provisioner" / "state" / "demo.json", "demo").write(
        state, expected_serial=0
    )
    out = move(capsys, clone, GIT_STATE, "from-file.json")
    assert (
        out
        == "app demo: stored serial 2 (lineage lin-1) in git branch provisioner-state on origin\n"
    )
    out = move(capsys, clone, PG_STATE % pg_schema, "from-git.json")
    assert out == f"app demo: stored serial 2 (lineage lin-1) in postgres schema {pg_schema}\n"
    code, text, _ = run(capsys, "state", "show", "demo")
    assert code == 0
    assert text.splitlines()[0] == (
        f"App demo: 2 bot(s) recorded in postgres schema {pg_schema} (serial 2, lineage lin-1)"
    )
    out = move(capsys, clone, "state: {path: var/demo.json}\n", "from-postgres.json")
    assert out == "app demo: stored serial 2 (lineage lin-1) in var/demo.json\n"
    assert (clone / "var" / "demo.json").read_text(encoding="utf-8") == dumps_state(state)


@pytest.mark.parametrize("kind", ["git", "postgres"])
def test_show_unlock_pull_forget_on_shared_backends(
    kind: str,
    clone: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if kind == "postgres":
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        schema = request.getfixturevalue("pg_schema")
        monkeypatch.setenv("PROVISIONER_STATE_DSN", cluster.dsn())
        settings(clone, PG_STATE % schema)
        where = f"postgres schema {schema}"
    else:
        settings(clone, GIT_STATE)
        where = "git branch provisioner-state on origin"
    code, out, _ = run(capsys, "state", "show", "demo")
    assert (code, out) == (0, f"App demo: no recorded state in {where}\n")
    (clone / "s.json").write_text(dumps_state(recorded()), encoding="utf-8")
    assert run(capsys, "state", "push", "demo", "s.json")[0] == 0
    holder = hold_lock(clone)
    try:
        code, out, _ = run(capsys, "state", "show", "demo")
        assert out.splitlines()[1].startswith("Locked by ")
        assert f" pid {holder.pid} (provisioner apply) since " in out.splitlines()[1]
        code, _, err = run(capsys, "state", "unlock", "demo")
        assert code == 1 and "held by a live run: " in err
        code, out, _ = run(capsys, "state", "unlock", "demo", "--force")
        assert code == 0 and f"pid {holder.pid} (provisioner apply)" in out
    finally:
        assert holder.stdin is not None
        holder.kill()
        holder.communicate(timeout=30)
    code, out, _ = run(capsys, "state", "forget", "demo", "a")
    assert code == 0, out
    code, document, _ = run(capsys, "state", "pull", "demo")
    assert '"a"' not in document and '"b"' in document and '"serial": 3' in document


def hold_lock(root: Path) -> subprocess.Popen[str]:
    """`provisioner`'s own backend for app demo, locked by another process."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provisioner.workspace import state_backend_for\n"
        "backend = state_backend_for('demo', Path('bots'))\n"
        "with backend.lock('provisioner apply'):\n"
        "    sys.stdout.write('locked\\n'); sys.stdout.flush()\n"
        "    sys.stdin.readline()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n", process.stderr
    return process


def test_a_dsn_password_never_reaches_any_output(
    clone: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: Cluster,
    pg_schema: str,
) -> None:
    monkeypatch.setenv("PROVISIONER_STATE_DSN", pg_cluster.dsn(user=PASSWORD_USER, password=CANARY))
    settings(clone, PG_STATE % pg_schema)
    (clone / "bots" / "demo" / "bot.yaml").write_text("userId: x\n", "utf-8")
    texts = []
    for args in (
        ["--debug", "state", "show", "demo"],
        ["--debug", "state", "show", "--format", "json"],
        ["--debug", "state", "pull", "demo"],
        ["--debug", "state", "unlock", "demo"],
        ["--debug", "plan", "--no-refresh", "demo"],
        ["validate", "bots/demo"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=clone,
        )
        texts.append(result.stdout + result.stderr)
    joined = "\n".join(texts)
    assert CANARY not in joined
    assert "password authentication failed" in joined
    assert f"postgres schema {pg_schema}: cannot connect: " in joined


READ_STATE = (
    "state: {backend: postgres, dsn: '${PROVISIONER_DEMO_STATE_DSN}',"
    " readDsn: '${PROVISIONER_DEMO_STATE_READ_DSN}', schema: %s}\n"
)
WEBHOOK_BOT = (
    "userId: hook-bot\nname: Hook\ntype: x\nprofileUrl: https://example.com/p.png\n"
    "integrations:\n  - {type: webhook, callbackUrl: 'https://hooks.example.com/x'}\n"
)


def test_plan_jobs_read_through_a_read_only_role_and_apply_writes_through_dsn(
    clone: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pg_cluster: Cluster,
    pg_schema: str,
) -> None:
    settings(clone, READ_STATE % pg_schema)
    (clone / "bots" / "demo" / "hook-bot.yaml").write_text(WEBHOOK_BOT, "utf-8")
    reader = pg_cluster.dsn(user=read_only_role(pg_cluster, pg_schema))
    monkeypatch.setenv("PROVISIONER_DEMO_STATE_READ_DSN", reader)
    monkeypatch.delenv("PROVISIONER_DEMO_STATE_DSN", raising=False)
    # a plan job holds the read-only DSN only
    code, out, err = run(capsys, "plan", "demo")
    assert (code, err) == (0, "")
    assert "Plan for app demo: 1 to create" in out
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 1
    assert err.startswith(
        "error: app demo: the manifests have 1 error:\n"
        "  bots/demo/app.yaml:2:33: state.dsn: environment variable PROVISIONER_DEMO_STATE_DSN"
        " is not set\n"
    )
    # the apply job holds the write DSN (and may hold the read one too)
    monkeypatch.setenv("PROVISIONER_DEMO_STATE_DSN", pg_cluster.dsn())
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 0, err
    monkeypatch.delenv("PROVISIONER_DEMO_STATE_DSN")
    code, out, err = run(capsys, "plan", "demo", "--detailed-exitcode")
    assert (code, err) == (0, "")
    assert out.startswith("Plan for app demo: no changes\n")
    code, out, _ = run(capsys, "state", "show", "demo")
    assert code == 0 and out.startswith(
        f"App demo: 1 bot(s) recorded in postgres schema {pg_schema} (serial 1, lineage "
    )
    # a read-only role given as dsn fails clearly, and writes nothing
    monkeypatch.setenv("PROVISIONER_DEMO_STATE_DSN", reader)
    (clone / "bots" / "demo" / "hook-bot.yaml").write_text(WEBHOOK_BOT.replace("Hook", "H2"))
    code, out, err = run(capsys, "apply", "demo", "--auto-approve")
    assert code == 1
    assert (
        f"postgres schema {pg_schema}: cannot lock the state of app demo: cannot execute"
        " DELETE in a read-only transaction\n"
    ) in err
    assert "a read-only role belongs in state.readDsn" in err


@pytest.mark.parametrize("kind", ["file", "git", "postgres"])
def test_show_fills_updated_at_after_an_apply_on_every_backend(
    kind: str,
    clone: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    state = {"file": "", "git": GIT_STATE}.get(kind)
    if state is None:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        monkeypatch.setenv("PROVISIONER_STATE_DSN", cluster.dsn())
        state = PG_STATE % request.getfixturevalue("pg_schema")
    settings(clone, state)
    (clone / "bots" / "demo" / "a.yaml").write_text(
        "userId: a\nname: Alpha\ntype: Message AI\nprofileUrl: https://example.com/a.png\n"
        "integrations:\n  - type: webhook\n    callbackUrl: https://hooks.example.com/rc\n",
        encoding="utf-8",
    )
    assert run(capsys, "apply", "demo", "--auto-approve")[0] == 0
    code, out, _ = run(capsys, "state", "show", "demo")
    assert code == 0
    header, row = out.splitlines()[-2:]
    assert header.endswith("UPDATED AT")
    assert re.fullmatch(r"a +Alpha +no +webhook +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row), row
