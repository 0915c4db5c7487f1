"""`provisioner apply` end to end: main([...]) in-process against the emulator over loopback.

Each test gets a fresh emulator (``EmulatorServer`` on 127.0.0.1, ephemeral port) and a
workspace whose app.yaml points at it, with appKey/appSecret/Dify keys as ${VARS}.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.emulator import EmulatorServer
from provisioner.rongcloud import BotPayload
from tests.apply_support import (
    APP_KEY,
    ENV,
    Workspace,
    calls,
    client_for,
    enter_workspace,
    live_bots,
    write_calls,
)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: EmulatorServer) -> Workspace:
    workspace = enter_workspace(tmp_path, server.url, monkeypatch, {"NO_COLOR": "1", **ENV})
    workspace.bot("assistant-bot", name="Assistant")
    workspace.bot("helper-bot", name="Helper")
    return workspace


def manifest_payload(user_id: str) -> BotPayload:
    """The API body of a bot of ``bots/demo`` as its manifest declares it."""
    from provisioner.plan.canonical import api_payload
    from provisioner.workspace import load_apps

    (app,) = load_apps(["demo"], Path("bots"), env=ENV)
    return api_payload(next(bot for bot in app.bots if bot.userId == user_id), ENV)


def apply(*args: str) -> int:
    return main(["apply", *args])


def plan_exit(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["plan", "--detailed-exitcode"])
    return code, capsys.readouterr().out


HAND_MADE = BotPayload.model_validate(
    {
        "userId": "helper-bot",
        "name": "Made by hand",
        "type": "x",
        "profileUrl": "https://example.com/hand.png",
        "integrations": [{"type": "webhook", "callbackUrl": "https://hooks.example.com/hand"}],
    }
)


class TtyInput(io.StringIO):
    """Standard input that claims to be a terminal, with the user's answers in it."""

    def isatty(self) -> bool:
        return True


# --- the happy paths ------------------------------------------------------------------------


def test_first_apply_creates_every_bot_and_the_next_plan_is_empty(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    out = capsys.readouterr().out
    assert "Plan for app demo: 2 to create" in out
    assert "demo: + assistant-bot: created" in out
    assert "demo: + helper-bot: created" in out
    assert "Apply complete for app demo: 2 applied, 0 failed, 0 not attempted." in out

    live = live_bots(server)
    assert sorted(live) == ["assistant-bot", "helper-bot"]
    assert live["assistant-bot"].name == "Assistant"
    assert live["assistant-bot"].integrations is not None
    dify = next(i for i in live["assistant-bot"].integrations if i.type == "dify_chatflow")
    assert dify.auth is not None and dify.auth.apiKey == ENV["DIFY_KEY"]
    state = ws.state()
    assert sorted(state.bots) == ["assistant-bot", "helper-bot"]
    assert state.serial == 2  # one write per successful call

    assert plan_exit(capsys)[0] == 0
    assert apply("--auto-approve") == 0
    assert capsys.readouterr().out.endswith("No changes.\n")
    assert write_calls(server) == 2


def test_update_changes_the_bot_in_place(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    ws.bot("helper-bot", name="Helper v2")
    assert apply("--auto-approve") == 0
    out = capsys.readouterr().out
    assert "demo: ~ helper-bot: updated" in out
    assert live_bots(server)["helper-bot"].name == "Helper v2"
    assert (calls(server, "create"), calls(server, "update")) == (2, 1)
    assert plan_exit(capsys)[0] == 0


def test_removing_a_manifest_deletes_the_bot(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    ws.remove_bot("helper-bot")
    assert apply("--auto-approve") == 0
    assert "demo: - helper-bot: deleted" in capsys.readouterr().out
    assert sorted(live_bots(server)) == ["assistant-bot"]
    assert sorted(ws.state().bots) == ["assistant-bot"]
    assert plan_exit(capsys)[0] == 0


def test_a_bot_made_by_hand_is_adopted_never_created_again(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with client_for(server) as client:
        client.create_bot(HAND_MADE)
    assert apply("--auto-approve") == 0
    out = capsys.readouterr().out
    assert "<= adopt helper-bot" in out
    assert "demo: <= helper-bot: adopted" in out
    assert calls(server, "create") == 2  # the hand-made one and assistant-bot
    assert calls(server, "update") == 1
    assert live_bots(server)["helper-bot"].name == "Helper"
    assert plan_exit(capsys)[0] == 0


def test_a_bot_already_as_declared_is_adopted_without_a_call(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    ws.state_path().unlink()  # forget everything: both bots are now "on the server, unrecorded"
    assert apply("--auto-approve") == 0
    out = capsys.readouterr().out
    assert "demo: <= assistant-bot: adopted (already as declared; recorded without a call)" in out
    assert write_calls(server) == 2
    assert sorted(ws.state().bots) == ["assistant-bot", "helper-bot"]


def test_drift_made_outside_git_shows_in_the_next_plan_and_apply_repairs_it(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    capsys.readouterr()
    hand_edit = live_bots(server)["helper-bot"].model_copy(update={"name": "Edited in console"})
    with client_for(server) as client:
        client.update_bot(hand_edit)

    code, out = plan_exit(capsys)
    assert code == 2
    assert "helper-bot: changed on the server" in out
    assert '"Edited in console"' in out
    assert apply("--auto-approve") == 0
    assert live_bots(server)["helper-bot"].name == "Helper"
    assert plan_exit(capsys)[0] == 0


def test_several_apps_are_applied_in_one_run(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(apps={"second-key": "second-secret"}) as other:
        second = Workspace(tmp_path, other.url)
        second.app("second", key_var="RC_KEY2", secret_var="RC_SECRET2")
        second.bot("solo-bot", app="second")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RC_KEY2", "second-key")
            patch.setenv("RC_SECRET2", "second-secret")
            assert apply("--auto-approve", "--concurrency", "3") == 0
            out = capsys.readouterr().out
            assert "Apply complete for app demo: 2 applied" in out
            assert "Apply complete for app second: 1 applied" in out
            assert sorted(live_bots(other, "second-key")) == ["solo-bot"]
            assert main(["plan", "--detailed-exitcode"]) == 0


def test_json_output_is_one_document(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply("--auto-approve", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [plan["app"] for plan in doc["plans"]] == ["demo"]
    (result,) = doc["applies"]
    assert result["counts"] == {"applied": 2, "failed": 0, "not_attempted": 0}
    assert result["planId"] == doc["plans"][0]["id"]
    assert [c["outcome"] for c in result["changes"]] == ["applied", "applied"]
    assert result["interrupted"] is False


def without_progress(err: str) -> str:
    """stderr without the one line per app a multi-app run prints in a log."""
    return "".join(line for line in err.splitlines(True) if not line.startswith("planned "))


# --- confirmation -----------------------------------------------------------------------------


def test_without_a_terminal_apply_refuses_unless_approved(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply() == 1
    captured = capsys.readouterr()
    assert "Plan for app demo: 2 to create" in captured.out
    assert captured.err == (
        "error: refusing to apply without confirmation: standard input is not a terminal\n"
        "  hint: review the plan, then re-run with --auto-approve, or apply a reviewed plan"
        " with --plan FILE or --plan-id ID\n"
    )
    assert write_calls(server) == 0


def test_a_terminal_is_asked_and_no_means_nothing_changes(
    ws: Workspace,
    server: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", TtyInput("n\n"))
    assert apply() == 1
    out = capsys.readouterr().out
    assert "Apply 2 change(s) to 1 app(s)? [y/N]: " in out
    assert "Apply cancelled; nothing was changed." in out
    assert write_calls(server) == 0

    monkeypatch.setattr("sys.stdin", TtyInput("y\n"))
    assert apply() == 0
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


# --- reviewed plans ---------------------------------------------------------------------------


def test_a_saved_plan_applies_without_a_prompt(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--out", "plan.json"]) == 0
    assert apply("--plan", "plan.json") == 0
    assert "Apply complete for app demo: 2 applied" in capsys.readouterr().out
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


def test_a_stale_saved_plan_is_refused(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--out", "plan.json"]) == 0
    reviewed = json.loads(Path("plan.json").read_text())["plans"][0]["id"]
    ws.bot("helper-bot", name="Changed after review")
    capsys.readouterr()

    assert apply("--plan", "plan.json") == 1
    err = capsys.readouterr().err
    current = _current_plan_id(capsys)
    assert err == (
        f"error: the plan for app demo is not the reviewed one: reviewed plan id {reviewed},"
        f" current plan id {current}\n"
        "  hint: the manifests, the state or the live bots changed since the plan was made;"
        " re-run `provisioner plan`, review it, and apply the new plan\n"
    )
    assert write_calls(server) == 0


def test_a_plan_made_before_another_apply_is_refused(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--out", "plan.json"]) == 0
    assert apply("--auto-approve") == 0  # the state moves on
    assert apply("--plan", "plan.json") == 1
    assert "is not the reviewed one" in capsys.readouterr().err
    assert write_calls(server) == 2


def test_plan_id_must_match(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--plan-id", "0" * 64) == 1
    assert "reviewed plan id 0000" in capsys.readouterr().err
    assert write_calls(server) == 0
    plan_id = _current_plan_id(capsys)
    assert apply("--plan-id", f"demo={plan_id}") == 0
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


def test_plan_and_plan_id_together_is_a_usage_error(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--plan", "p.json", "--plan-id", "x") == 1  # never 2: that means "changes"
    assert "give either --plan FILE or --plan-id, not both" in capsys.readouterr().err


def _current_plan_id(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["plan", "--format", "json"]) == 0
    plan_id: str = json.loads(capsys.readouterr().out)["plans"][0]["id"]
    return plan_id


# --- safety rules and failures -----------------------------------------------------------------


def test_apply_needs_every_secret_and_an_empty_one_counts_as_unset(
    ws: Workspace,
    server: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIFY_KEY", "")  # what CI gives for a secret that does not exist
    assert apply("--auto-approve") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: app demo: the manifests have 2 errors:\n")
    assert "environment variable DIFY_KEY is empty" in err
    assert write_calls(server) == 0


def test_deleting_every_bot_is_blocked_without_allow_empty(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    ws.remove_bot("assistant-bot")
    ws.remove_bot("helper-bot")
    capsys.readouterr()
    assert apply("--auto-approve") == 3
    captured = capsys.readouterr()
    assert "Blocked by a safety rule" in captured.out
    assert captured.err.startswith("error: the plan for app demo is blocked: the plan deletes")
    assert calls(server, "delete") == 0

    assert apply("--auto-approve", "--allow-empty") == 0
    assert live_bots(server) == {}


def test_a_protected_bot_is_never_deleted(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.bot("helper-bot", protect=True)
    assert apply("--auto-approve") == 0
    ws.remove_bot("helper-bot")
    assert apply("--auto-approve") == 3
    assert "helper-bot is protected" in capsys.readouterr().err
    assert calls(server, "delete") == 0
    assert "helper-bot" in live_bots(server)


def test_refused_credentials_end_with_a_summary_and_exit_4(
    ws: Workspace,
    server: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RC_SECRET", "not-the-secret")
    assert apply("--auto-approve", "--no-refresh", "--concurrency", "1") == 4
    captured = capsys.readouterr()
    assert "Apply incomplete for app demo: 0 applied, 1 failed, 1 not attempted." in captured.out
    assert "endpoint /v3/bot/create.json, HTTP 401, code 1004, errorMessage" in captured.out
    assert "X-Request-ID " in captured.out
    assert "Not attempted:\n    + helper-bot (create)" in captured.out
    assert "not-the-secret" not in captured.out + captured.err
    assert captured.err.startswith("error: apply incomplete: 1 failed, 1 not attempted\n")
    assert not ws.state_path().exists() or ws.state().bots == {}


def test_an_app_with_nothing_to_do_does_not_need_credentials(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    monkeypatch.delenv("RC_SECRET")
    assert apply("--auto-approve", "--no-refresh") == 0
    assert capsys.readouterr().out.endswith("No changes.\n")


def test_a_held_lock_fails_fast_naming_the_holder(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from provisioner.state.file.backend import FileBackend

    backend = FileBackend(ws.state_path(), "demo")
    with backend.lock("provisioner apply (ci run 42)"):
        assert apply("--auto-approve") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the state of app demo is locked by ")
    assert "(provisioner apply (ci run 42)) since " in err
    assert "hint: wait for that run to finish; if it is gone, run" in err
    assert write_calls(server) == 0


def test_python_dash_m_apply_runs_end_to_end(ws: Workspace, server: EmulatorServer) -> None:
    import subprocess
    import sys

    from tests.apply_support import subprocess_env

    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "apply", "--auto-approve"],
        cwd=ws.root,
        env=subprocess_env(ws.root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Apply complete for app demo: 2 applied, 0 failed, 0 not attempted." in result.stdout
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]
    assert APP_KEY not in result.stdout


@pytest.mark.parametrize("undocumented", [False, True], ids=["emulator-codes", "random-codes"])
def test_without_refresh_an_existing_bot_is_adopted_when_identical(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str], undocumented: bool
) -> None:
    assert apply("--auto-approve") == 0
    ws.state_path().unlink()
    server.set_faults(random_undocumented_codes=undocumented)
    capsys.readouterr()
    assert apply("--auto-approve", "--no-refresh") == 0
    out = capsys.readouterr().out
    assert "demo: + helper-bot: created (already existed on the server; adopted)" in out
    assert calls(server, "update") == 0
    assert sorted(ws.state().bots) == ["assistant-bot", "helper-bot"]
    assert plan_exit(capsys)[0] == 0
    assert (server.stats()["faults"]["random_codes"] == 2) is undocumented


@pytest.mark.parametrize("undocumented", [False, True], ids=["emulator-codes", "random-codes"])
def test_without_refresh_a_create_never_overwrites_another_teams_bot(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str], undocumented: bool
) -> None:
    with client_for(server) as client:
        client.create_bot(manifest_payload("helper-bot").model_copy(update={"name": "Theirs"}))
    server.set_faults(random_undocumented_codes=undocumented)
    assert apply("--auto-approve", "--no-refresh") == 4
    out = capsys.readouterr().out
    assert "demo: + assistant-bot: created" in out
    assert (
        "demo: + helper-bot: create failed: bot helper-bot already exists on the server with"
        " another spec; the plan was to create it, and will not overwrite a bot it did not"
        " plan for" in out
    )
    assert "hint: it was made outside this state (by hand, another team" in out
    assert live_bots(server)["helper-bot"].name == "Theirs"
    assert calls(server, "update") == 0
    assert sorted(ws.state().bots) == ["assistant-bot"]
    assert (server.stats()["faults"]["random_codes"] == 1) is undocumented


def test_a_plan_id_for_an_app_not_in_the_run_is_an_error(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--plan-id", "prod=abc") == 1
    assert capsys.readouterr().err == (
        "error: --plan-id prod=abc: app prod is not part of this run\n"
        "  hint: name the app on the command line, or fix the app name before '='\n"
    )


def test_an_app_that_cannot_plan_is_reported_and_the_others_apply(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app("second", key_var="RC_KEY2", secret_var="RC_SECRET2")
    ws.bot("solo-bot", app="second")
    ws.app("third", key_var="RC_KEY3", secret_var="RC_SECRET3")
    ws.bot("solo-bot", app="third")
    assert apply("--auto-approve") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Plan for app demo: 2 to create\n")
    assert "Apply complete for app demo: 2 applied, 0 failed, 0 not attempted." in captured.out
    assert without_progress(captured.err) == (
        "error: app second: no credentials to refresh from the API: RC_KEY2, RC_SECRET2\n"
        "  hint: export RC_KEY2=... RC_SECRET2=... (in CI: the PROVISIONER_SECRETS bundle),"
        " or pass --no-refresh to plan from the"
        " recorded state only\n"
        "error: app third: no credentials to refresh from the API: RC_KEY3, RC_SECRET3\n"
        "  hint: export RC_KEY3=... RC_SECRET3=... (in CI: the PROVISIONER_SECRETS bundle),"
        " or pass --no-refresh to plan from the"
        " recorded state only\n"
    )
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


def test_a_blocked_app_does_not_stop_the_others_and_the_worst_outcome_wins(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    ws.remove_bot("assistant-bot")
    ws.remove_bot("helper-bot")
    ws.app("second")
    ws.bot("solo-bot", app="second")
    capsys.readouterr()
    assert apply("--auto-approve") == 3
    captured = capsys.readouterr()
    assert "Apply complete for app second: 1 applied" in captured.out
    assert without_progress(captured.err).startswith(
        "error: the plan for app demo is blocked: the plan deletes"
    )
    assert "planned demo: 2 to delete (blocked)\n" in captured.err  # a line per app in a log
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot", "solo-bot"]


def test_an_app_with_broken_manifests_does_not_stop_the_others(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app("second")
    (ws.root / "bots" / "second" / "broken.yaml").write_text("userId: x\n", encoding="utf-8")
    assert apply("--auto-approve") == 1
    captured = capsys.readouterr()
    assert "Apply complete for app demo: 2 applied" in captured.out
    assert captured.err.startswith("error: app second: the manifests have ")
    assert "  bots/second/broken.yaml:1:1: " in captured.err
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-bot"]


def test_a_refused_plan_id_refuses_only_its_app(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app("second")
    ws.bot("solo-bot", app="second")
    assert main(["plan", "--out", "plan.json"]) == 0
    ws.bot("helper-bot", name="Changed after review")
    capsys.readouterr()
    assert apply("--plan", "plan.json") == 1
    captured = capsys.readouterr()
    assert without_progress(captured.err).startswith(
        "error: the plan for app demo is not the reviewed one: "
    )
    assert "Apply complete for app second: 1 applied" in captured.out
    assert sorted(live_bots(server)) == ["solo-bot"]


def test_json_output_lists_the_refused_apps(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.app("second", key_var="RC_KEY2", secret_var="RC_SECRET2")
    ws.bot("solo-bot", app="second")
    assert apply("--auto-approve", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert [plan["app"] for plan in document["plans"]] == ["demo"]
    assert [result["app"] for result in document["applies"]] == ["demo"]
    assert document["refused"] == [
        {
            "app": "second",
            "error": {
                "type": "ConfigError",
                "message": "no credentials to refresh from the API: RC_KEY2, RC_SECRET2",
                "hint": "export RC_KEY2=... RC_SECRET2=... (in CI: the PROVISIONER_SECRETS"
                " bundle), or pass --no-refresh to plan from the recorded state only",
            },
        }
    ]


def test_a_changed_user_id_is_planned_and_applied_as_one_replacement(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply("--auto-approve") == 0
    assert ws.state().bots["helper-bot"].source == "helper-bot.yaml"
    path = ws.root / "bots" / "demo" / "helper-bot.yaml"
    path.write_text(path.read_text("utf-8").replace("userId: helper-bot", "userId: helper-v2"))
    capsys.readouterr()
    code, out = plan_exit(capsys)
    assert code == 2
    assert out.splitlines()[0] == "Plan for app demo: 1 to replace"
    assert "  -/+ replace helper-bot -> helper-v2 (bots/demo/helper-bot.yaml)" in out
    assert '      ~ userId: "helper-bot" -> "helper-v2"' in out
    assert apply("--auto-approve") == 0
    out = capsys.readouterr().out
    assert out.index("demo: - helper-bot: deleted") < out.index("demo: + helper-v2: created")
    assert sorted(live_bots(server)) == ["assistant-bot", "helper-v2"]
    assert ws.state().bots["helper-v2"].source == "helper-bot.yaml"
    assert plan_exit(capsys)[0] == 0


def test_lock_timeout_waits_for_the_holder_then_applies(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading
    import time

    from provisioner.state.file.backend import FileBackend

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with FileBackend(ws.state_path(), "demo").lock("provisioner apply (ci run 42)"):
            held.set()
            release.wait(30)
            time.sleep(1.5)  # still held when apply first tries

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    release.set()
    try:
        assert apply("--auto-approve", "--lock-timeout", "1m") == 0
    finally:
        holder.join()
    out, err = capsys.readouterr()
    assert err.startswith("warning: the state of app demo is locked by ")
    assert "(provisioner apply (ci run 42))" in err
    assert err.rstrip().endswith("; waiting up to 60 s for it")
    assert "Apply complete for app demo: 2 applied" in out
    assert write_calls(server) == 2


def test_lock_timeout_fails_naming_the_holder_and_the_wait(
    ws: Workspace, server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from provisioner.state.file.backend import FileBackend

    with FileBackend(ws.state_path(), "demo").lock("provisioner apply (ci run 42)"):
        assert apply("--auto-approve", "--lock-timeout", "1s") == 1
        assert apply("--auto-approve", "--lock-timeout", "soon") == 1
    err = capsys.readouterr().err
    assert "warning: the state of app demo is locked by " in err
    assert ", still after waiting 1 s (--lock-timeout)\n  hint: wait for that run" in err
    assert (
        "Error: Invalid value for '--lock-timeout': 'soon' is not a duration such as 30s,"
        " 5m or 1h" in err
    )
    assert write_calls(server) == 0
