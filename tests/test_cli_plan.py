"""`provisioner plan` end to end: offline, against the embedded emulator, output formats,
--out, exit codes (0/1/2/3), several apps, and errors with exact messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.state import RecordedApp, RecordedBot
from provisioner.state.file.backend import FileBackend
from tests.apply_support import ENV, calls

BOT = """\
userId: {user_id}
name: 消息助手
type: Message AI
profileUrl: https://example.com/robot.png
metadata: {{version: "1"}}
integrations:
  - type: webhook
    callbackUrl: https://hooks.example.com/rongcloud
    objectNames: [RC:TxtMsg]
    events: ["message:private"]
  - type: dify_chatflow
    callbackUrl: https://api.dify.ai/v1
    auth: {{apiKey: "${{DIFY_ASSISTANT_KEY}}"}}
"""
SECRET = "app-very-secret-value"


def write_app(
    root: Path,
    name: str = "demo",
    app_yaml: str = "endpoint: local\n",
    bots: tuple[str, ...] = ("assistant-bot",),
) -> Path:
    folder = root / "bots" / name
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text(app_yaml, encoding="utf-8")
    for user_id in bots:
        (folder / f"{user_id}.yaml").write_text(BOT.format(user_id=user_id), encoding="utf-8")
    return folder


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFY_ASSISTANT_KEY", SECRET)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    return code, captured.out, captured.err


def test_offline_plan_of_a_new_app(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir)
    code, out, err = run(capsys, "--no-refresh")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Plan for app demo: 1 to create"
    assert lines[1].endswith("(no recorded state yet)")
    assert "  + create assistant-bot (bots/demo/assistant-bot.yaml)" in lines
    assert "      + integrations[dify_chatflow].auth.apiKey: (sensitive)" in lines
    assert "\x1b[" not in out  # not a terminal: no colour
    assert not (workdir / ".provisioner").exists()  # offline: no emulator, nothing written


def test_detailed_exitcode_is_2_with_changes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    assert run(capsys, "--no-refresh", "--detailed-exitcode")[0] == 2


def test_local_endpoint_plans_against_the_emulator(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    code, out, _ = run(capsys, "demo")
    assert code == 0 and out.startswith("Plan for app demo: 1 to create\n")
    assert (workdir / ".provisioner" / "emulator" / "demo.sqlite3").is_file()


def test_bot_already_on_the_emulator_is_adopted(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provisioner.connect import connect
    from provisioner.plan.canonical import api_payload
    from provisioner.workspace import load_apps

    write_app(workdir)
    (app,) = load_apps(["demo"], Path("bots"))
    with connect(app, dict(os.environ)) as client:
        client.create_bot(api_payload(app.bots[0], dict(os.environ)))
        client.create_bot(
            api_payload(app.bots[0], dict(os.environ)).model_copy(update={"userId": "hand-made"})
        )
    code, out, _ = run(capsys, "--detailed-exitcode")
    assert code == 2
    assert out.splitlines()[0] == "Plan for app demo: 1 to adopt; 1 unmanaged"
    assert "  <= adopt assistant-bot (bots/demo/assistant-bot.yaml)" in out
    assert "Unmanaged (on the server, never recorded, not declared; left alone): hand-made" in out


def test_plan_apply_plan_converges_to_no_changes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    assert run(capsys, "--out", "plan.json")[0] == 0
    assert main(["apply", "--plan", "plan.json"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "--detailed-exitcode")
    assert code == 0
    assert out.splitlines()[0] == "Plan for app demo: no changes"
    state_text = (workdir / ".provisioner" / "state" / "demo.json").read_text(encoding="utf-8")
    assert SECRET not in state_text and "hmac-sha256:" in state_text


def test_json_format_and_out_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir)
    code, out, _ = run(capsys, "--no-refresh", "--format", "json", "--out", "plan.json")
    assert code == 0
    assert (workdir / "plan.json").read_text(encoding="utf-8") == out
    document = json.loads(out)
    assert document["format_version"] == 1
    (plan,) = document["plans"]
    assert (plan["app"], plan["counts"]["create"], len(plan["id"])) == ("demo", 1, 64)
    # the same inputs give the same id on a second run
    _, again, _ = run(capsys, "--no-refresh", "--format", "json")
    assert json.loads(again)["plans"][0]["id"] == plan["id"]


def test_markdown_format(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir)
    code, out, _ = run(capsys, "--no-refresh", "--format", "markdown")
    assert code == 0
    assert out.startswith("<!-- provisioner:plan -->\n### Plan for `demo`: 1 to create\n")


def test_several_apps_in_order_and_one_out_document(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir, "staging")
    write_app(workdir, "production", bots=("a-bot", "b-bot"))
    code, out, _ = run(capsys, "--no-refresh", "--out", "plan.json")
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("Plan for app")]
    assert headers == [
        "Plan for app production: 2 to create",
        "Plan for app staging: 1 to create",
    ]
    document = json.loads((workdir / "plan.json").read_text(encoding="utf-8"))
    assert [plan["app"] for plan in document["plans"]] == ["production", "staging"]


def test_several_apps_planned_against_their_emulators(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir, "one")
    write_app(workdir, "two")
    code, out, _ = run(capsys, "one", "two")
    assert code == 0
    assert out.count("1 to create") == 2
    assert sorted(p.name for p in (workdir / ".provisioner" / "emulator").glob("*.sqlite3")) == [
        "one.sqlite3",
        "two.sqlite3",
    ]


def test_blocked_plan_is_shown_and_exits_3(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    backend = FileBackend(workdir / ".provisioner" / "state" / "demo.json", "demo")
    state = RecordedApp.fresh("demo").with_bot("assistant-bot", RecordedBot({"userId": "x"}))
    state = state.with_bot("old-bot", RecordedBot({"userId": "old-bot"}, protect=True))
    backend.write(state, expected_serial=0)
    code, out, _ = run(capsys, "--no-refresh", "--detailed-exitcode")
    assert code == 3
    assert "  - delete old-bot [protected]" in out
    assert out.rstrip().endswith(
        "Blocked by a safety rule (nothing will be applied):\n"
        "  - old-bot is protected (protect: true in state); set protect: false in a separate"
        " apply before deleting it"
    )


@pytest.mark.parametrize("unset", [True, False], ids=["unset", "empty"])
def test_a_plan_needs_no_secret_and_says_what_it_did_not_check(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unset: bool,
) -> None:
    """A pull request from a fork has no secrets (and CI gives an empty string for a missing
    one): the plan is made anyway and names what it could not check."""
    write_app(workdir)
    if unset:
        monkeypatch.delenv("DIFY_ASSISTANT_KEY")
    else:
        monkeypatch.setenv("DIFY_ASSISTANT_KEY", "")
    code, out, err = run(capsys, "--no-refresh")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Plan for app demo: 1 to create"
    assert lines[2] == (
        "Not checked in this run (no value in the environment): DIFY_ASSISTANT_KEY; each"
        " reference is taken as unchanged where the state records it"
    )
    assert "      + integrations[dify_chatflow].auth.apiKey: (sensitive)" in lines
    with_secret = {"DIFY_ASSISTANT_KEY": SECRET}
    for name, value in with_secret.items():
        monkeypatch.setenv(name, value)
    assert main(["plan", "--no-refresh", "--format", "json"]) == 0
    reviewed_id = json.loads(capsys.readouterr().out)["plans"][0]["id"]
    assert reviewed_id == lines[1].split()[2]  # the same id with the secret as without it


def test_an_app_with_broken_manifests_does_not_stop_the_plan_of_another(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    broken = workdir / "bots" / "broken"
    broken.mkdir()
    (broken / "app.yaml").write_text("endpoint: local\n", encoding="utf-8")
    (broken / "bot.yaml").write_text("userId: x\n", encoding="utf-8")
    code, out, err = run(capsys, "--no-refresh")
    assert code == 1
    assert out.startswith("Plan for app demo: 1 to create\n")
    assert err.startswith("error: app broken: the manifests have ")


def test_unset_credentials_need_no_refresh(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_app(workdir, app_yaml="endpoint: sg\nappKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n")
    monkeypatch.delenv("RC_KEY", raising=False)
    monkeypatch.delenv("RC_SECRET", raising=False)
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: app demo: no credentials to refresh from the API: RC_KEY, RC_SECRET\n"
        "  hint: export RC_KEY=... RC_SECRET=... (in CI: the PROVISIONER_SECRETS bundle),"
        " or pass --no-refresh to plan from the"
        " recorded state only\n"
    )
    assert run(capsys, "--no-refresh")[0] == 0


def test_unknown_app_is_an_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir)
    code, _, err = run(capsys, "prod")
    assert code == 1
    assert err == (
        "error: no app 'prod': neither bots/prod nor prod is a folder\n"
        "  hint: give an app name under bots/ or the path to an app folder\n"
    )


def test_corrupt_state_is_an_error_and_left_alone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    state = workdir / ".provisioner" / "state" / "demo.json"
    state.parent.mkdir(parents=True)
    state.write_text("{", encoding="utf-8")
    code, _, err = run(capsys, "--no-refresh")
    assert code == 1
    assert err == (
        f"error: app demo: {state}: state file is not valid JSON (Expecting property name"
        " enclosed in double quotes at line 1, column 2)\n"
        "  hint: restore it from git or a backup; provisioner will not overwrite it\n"
    )
    assert state.read_text(encoding="utf-8") == "{"


def test_python_dash_m_plan(workdir: Path) -> None:
    write_app(workdir)
    env = {**os.environ, "DIFY_ASSISTANT_KEY": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "plan", "--no-refresh", "--detailed-exitcode"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=workdir,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith("Plan for app demo: 1 to create\n")
    assert SECRET not in result.stdout + result.stderr


def test_colour_on_a_terminal_only(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.cli import plan_cmd

    write_app(workdir)
    monkeypatch.setattr(plan_cmd, "use_color", lambda: True)
    _, out, _ = run(capsys, "--no-refresh")
    assert "  \x1b[32m+\x1b[0m create assistant-bot" in out


def test_app_given_as_a_path_with_another_bots_dir(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_app(workdir)
    (workdir / "bots").rename(workdir / "manifests")
    code, out, _ = run(capsys, "--no-refresh", "--bots-dir", "manifests")
    assert code == 0 and out.startswith("Plan for app demo: 1 to create\n")
    code, out, _ = run(capsys, "--no-refresh", "manifests/demo")
    assert code == 0 and "(manifests/demo/assistant-bot.yaml)" in out


def test_out_file_that_cannot_be_written(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir)
    code, _, err = run(capsys, "--no-refresh", "--out", "missing-dir/plan.json")
    assert code == 1
    assert err == (
        "error: cannot write the plan to missing-dir/plan.json: No such file or directory\n"
        "  hint: check that the folder exists and is writable\n"
    )


ENDPOINT_APP = "endpoint: ${RC_ENDPOINT}\nappKey: ${RC_KEY}\nappSecret: ${RC_SECRET}\n"


def test_endpoint_from_the_environment_is_resolved_at_plan_time(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: EmulatorServer,
) -> None:
    write_app(workdir, app_yaml=ENDPOINT_APP)
    for name, value in {**ENV, "RC_ENDPOINT": server.url}.items():
        monkeypatch.setenv(name, value)
    assert main(["validate", "--require-env"]) == 0
    assert capsys.readouterr().out == "bots/demo: 1 bot valid\n"
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Plan for app demo: 1 to create"
    assert calls(server, "query") == 1


def test_an_unset_endpoint_variable_fails_the_refresh_only(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_app(workdir, app_yaml=ENDPOINT_APP)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RC_ENDPOINT", raising=False)
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: app demo: bots/demo/app.yaml:1:11: endpoint: environment variable RC_ENDPOINT"
        " is not set\n"
        "  hint: export RC_ENDPOINT=... (local, a data center or a base URL), or pass"
        " --no-refresh to plan from the recorded state only\n"
    )
    code, out, err = run(capsys, "--no-refresh")
    assert (code, err) == (0, "")


def test_an_endpoint_variable_that_is_no_endpoint_is_refused_by_validate_and_plan(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_app(workdir, app_yaml=ENDPOINT_APP)
    for name, value in {**ENV, "RC_ENDPOINT": "http://example.com/plain"}.items():
        monkeypatch.setenv(name, value)
    assert main(["validate", "--require-env"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        "bots/demo/app.yaml:1:11: error: endpoint: the value of RC_ENDPOINT is not an endpoint",
        "  hint: set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base URL",
    ]
    assert "example.com" not in out
    code, out, err = run(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "error: app demo: bots/demo/app.yaml:1:11: endpoint: the value of RC_ENDPOINT is not"
        " an endpoint\n"
        "  hint: set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https:// base"
        " URL (`provisioner validate --require-env` checks it)\n"
    )


def test_plan_and_apply_print_the_manifests_warnings_on_stderr(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_app(workdir)
    path = folder / "assistant-bot.yaml"
    path.write_text(
        path.read_text("utf-8").replace("https://example.com", "http://example.com"), "utf-8"
    )
    warning = (
        "bots/demo/assistant-bot.yaml:4:13: warning: profileUrl: uses plain http:// to a"
        " non-loopback host\n"
        "  hint: use https:// so the data is encrypted in transit (fails with --strict)\n"
    )
    code, out, err = run(capsys, "--no-refresh")
    assert (code, err) == (0, warning)
    assert out.startswith("Plan for app demo: 1 to create\n")
    assert main(["apply", "--auto-approve", "--no-refresh"]) == 0
    assert capsys.readouterr().err == warning


def test_shards_split_the_apps_between_jobs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("alpha", "beta", "gamma", "delta", "epsilon"):
        write_app(workdir, name)
    seen: list[str] = []
    for index in (1, 2, 3):
        code, out, _ = run(capsys, "--no-refresh", "--shard", f"{index}/3")
        assert code == 0
        seen += [
            line.split()[3].rstrip(":") for line in out.splitlines() if line.startswith("Plan for")
        ]
    assert sorted(seen) == ["alpha", "beta", "delta", "epsilon", "gamma"]
    code, _, err = run(capsys, "--shard", "0/3")
    assert code == 1 and "Invalid value for '--shard'" in err
