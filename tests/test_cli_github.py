"""`provisioner github plan|apply|drift` end to end: the real CLI (``main``) with runner-shaped
environments and event payload files, against the GitHub fake, the emulator over loopback,
and real git (a bare ``origin`` whose branch ``provisioner-state`` holds the state).

Two clones stand in for the two runners: ``pr`` (a ``pull_request`` job: no secret in its
environment) and ``main`` (the ``push`` job after the merge, with the secrets).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.render.markdown import BLOCKED_NOTE
from provisioner.rongcloud import BotPayload
from tests.apply_support import APP_SECRET, client_for, write_calls
from tests.git_support import branch_file, install_rejecting_hook
from tests.github_fake import HUMAN_LOGIN, READONLY_TOKEN, REPO_NAME, WORKFLOW_TOKEN, GitHubFake
from tests.github_world import (
    GIT_STATE,
    HAND_MADE,
    HEAD,
    MERGE,
    RUN_URL,
    SECOND_KEY,
    SECRETS,
    World,
    merged_and_applied,
    open_pull,
    plan_data,
    pull_event,
)

# --- github plan ---------------------------------------------------------------------------------


def test_a_pull_request_gets_one_comment_edited_on_each_push_without_any_secret(
    world: World,
) -> None:
    number = open_pull(world)
    first = world.plan(number)
    assert first.code == 0, first.log
    (comment,) = world.comments(number)
    assert comment["user"]["login"] == "github-actions[bot]"
    body = comment["body"]
    assert body.startswith(
        "<!-- provisioner:plan -->\n## provisioner plan: 1 of 1 apps with changes\n"
    )
    data = plan_data(body)
    assert data["head_sha"] == HEAD
    (app,) = data["apps"]
    assert (app["app"], app["serial"], app["lineage"]) == ("demo", 0, None)
    assert [(c["action"], c["user_id"]) for c in app["changes"]] == [
        ("create", "assistant-bot"),
        ("create", "helper-bot"),
    ]
    assert f"[workflow run]({RUN_URL}101)" in body
    assert first.outputs == {
        "changes": "true",
        "blocked": "false",
        "plan-ids": json.dumps({"demo": app["plan_id"]}, separators=(",", ":")),
    }
    assert "## demo" in first.summary or "demo" in first.summary
    assert "DIFY_KEY" in first.out  # "not checked in this run"
    assert "Not checked in this run" in first.out

    world.both("bot", "helper-bot", name="Helper Two")
    second = world.plan(number, head="3" * 40)
    assert second.code == 0, second.log
    (edited,) = world.comments(number)
    assert edited["id"] == comment["id"]
    assert "Helper Two" in edited["body"]
    assert plan_data(edited["body"])["head_sha"] == "3" * 40
    assert world.github.calls["POST /repos/{owner}/{repo}/issues/{number}/comments"] == 1
    assert world.github.calls["PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"] == 1


def test_a_forged_marker_comment_is_ignored_and_warned_about(world: World) -> None:
    number = open_pull(world)
    forged = "<!-- provisioner:plan -->\nall good\n<!-- provisioner:plan-data {} -->"
    world.github.add_comment(REPO_NAME, number, forged, author=HUMAN_LOGIN)
    run = world.plan(number)
    assert run.code == 0
    ours = [c for c in world.comments(number) if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and len(world.comments(number)) == 2
    assert "::warning title=provisioner::ignored " in run.out
    assert f"by {HUMAN_LOGIN}: it carries provisioner's marker" in run.out


def test_a_fork_pull_request_gets_the_summary_and_no_comment(world: World) -> None:
    number = world.github.add_pull(REPO_NAME, head_sha=HEAD, head_repo="mallory/bots")
    payload = pull_event(number, HEAD, head_repo="mallory/bots")
    run = world.run(world.pr, ["plan"], event="pull_request", payload=payload, token=READONLY_TOKEN)
    assert run.code == 0, run.log
    assert world.comments(number) == []
    assert "::notice title=provisioner::a fork's pull request gets a read-only token" in run.out
    assert "assistant-bot" in run.summary


def test_manifest_text_cannot_issue_workflow_commands(world: World) -> None:
    world.both("bot", "assistant-bot", name="::error::forged")
    run = world.plan(open_pull(world))
    assert run.code == 0
    opened = [line for line in run.out.splitlines() if line.startswith("::stop-commands::")]
    assert len(opened) == 1
    token = opened[0].removeprefix("::stop-commands::")
    inside = run.out.split(opened[0])[1].split(f"::{token}::")[0]
    assert "::error::forged" in inside
    assert "::error::forged" not in run.out.replace(inside, "")


def test_validation_errors_are_annotations_and_a_summary_table_and_fail_the_check(
    world: World,
) -> None:
    (world.pr.root / "bots" / "demo" / "helper-bot.yaml").write_text(
        "userId: helper-bot\nname: 5\n", encoding="utf-8"
    )
    number = open_pull(world)
    run = world.plan(number)
    assert run.code == 1
    assert "::error file=bots/demo/helper-bot.yaml,line=" in run.out
    assert "| `bots/demo/helper-bot.yaml:" in run.summary
    assert "**Could not plan (see the job log):**" in run.summary
    (comment,) = world.comments(number)
    assert "could not be planned" in comment["body"] or "failed" in comment["body"]


def test_a_blocked_app_fails_the_plan_check_with_the_reason_in_the_comment(world: World) -> None:
    merged_and_applied(world)
    world.both("remove_bot", "assistant-bot")
    world.both("remove_bot", "helper-bot")
    number = open_pull(world, "4" * 40)
    run = world.plan(number, head="4" * 40)
    assert run.code == 3, run.log
    assert run.outputs["blocked"] == "true"
    (comment,) = world.comments(number)
    head = comment["body"].splitlines()[:6]  # opens with the block, then the deletions
    assert head[1] == "## provisioner plan: BLOCKED (1 of 1 apps) — 1 of 1 apps with changes"
    assert head[3:5] == ["> [!CAUTION]", f"> {BLOCKED_NOTE}"]
    assert head[5].endswith("(2); pass --allow-empty if that is intended")
    # lifted on both sides (whether a plan is blocked is part of its id): applied as reviewed
    lifted = world.plan(number, "--allow-empty", head="4" * 40)
    assert lifted.code == 0 and lifted.outputs["blocked"] == "false"
    world.github.merge_pull(REPO_NAME, number, "5" * 40)
    applied = world.apply("--allow-empty", sha="5" * 40)
    assert applied.code == 0, applied.log
    assert world.state().bots == {}


# --- github apply --------------------------------------------------------------------------------


def test_a_merge_applies_exactly_the_reviewed_plan_and_reports_on_the_pull_request(
    world: World,
) -> None:
    number = open_pull(world)
    reviewed = plan_data(world.plan(number).summary and world.comments(number)[0]["body"])
    world.github.merge_pull(REPO_NAME, number, MERGE)
    run = world.apply()
    assert run.code == 0, run.log
    assert "Applying the changes reviewed on pull request #1 (head 111111111111), bot by bot." in (
        run.out
    )
    assert write_calls(world.server) == 2
    state = world.state()
    assert sorted(state.bots) == ["assistant-bot", "helper-bot"]
    assert state.last_run == f"{RUN_URL}{world.run_id}"
    outcome = [c for c in world.comments(number) if "<!-- provisioner:apply -->" in c["body"]]
    assert len(outcome) == 1
    assert "| `demo` | ✅ applied | 2 | 0 | 0 |  |" in outcome[0]["body"]
    assert "| `demo` | ✅ applied |" in run.summary
    assert run.outputs["plan-ids"] == json.dumps(
        {"demo": reviewed["apps"][0]["plan_id"]}, separators=(",", ":")
    )
    # the next pull request plans from the state branch, still without any secret
    second = world.github.add_pull(REPO_NAME, head_sha="5" * 40)
    again = world.plan(second, head="5" * 40)
    assert again.code == 0, again.log
    (comment,) = world.comments(second)
    assert "No changes" in comment["body"]
    (app,) = plan_data(comment["body"])["apps"]
    assert (app["serial"], app["lineage"]) == (2, state.lineage)
    assert write_calls(world.server) == 2


def test_a_re_run_of_a_done_apply_edits_the_outcome_comment_and_makes_no_call(
    world: World,
) -> None:
    number = merged_and_applied(world)
    run = world.apply()
    assert run.code == 0, run.log
    outcomes = [c for c in world.comments(number) if "<!-- provisioner:apply -->" in c["body"]]
    assert len(outcomes) == 1
    assert "| `demo` | ✅ nothing to do | 0 | 0 | 0 |  |" in outcomes[0]["body"]
    assert write_calls(world.server) == 2


def test_a_re_run_after_a_partial_apply_finishes_the_reviewed_plan(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull(REPO_NAME, number, MERGE)
    with client_for(world.server) as client:  # the app's 10-bot quota leaves room for one
        for index in range(9):
            client.create_bot(BotPayload.model_validate({**HAND_MADE, "userId": f"hand-{index}"}))
    partial = world.apply()
    assert partial.code == 4, partial.log
    assert world.state().serial == 1
    with client_for(world.server) as client:
        client.delete_bot("hand-0")
    finished = world.apply()
    assert finished.code == 0, finished.log
    assert sorted(world.state().bots) == ["assistant-bot", "helper-bot"]
    assert world.state().serial == 2
    body = next(c for c in world.comments(number) if "provisioner:apply" in c["body"])["body"]
    assert "| `demo` | ✅ applied | 1 | 0 | 0 |  |" in body


def test_without_a_merged_pull_request_apply_refuses_unless_auto_approved(world: World) -> None:
    world.github.add_commit(REPO_NAME, MERGE)
    refused = world.apply()
    assert refused.code == 3
    assert "error: no merged pull request has commit 222222222222 as its merge commit" in (
        refused.err
    )
    assert write_calls(world.server) == 0
    approved = world.apply("--auto-approve")
    assert approved.code == 0, approved.log
    assert "applying the current plan (--auto-approve)" in approved.out
    assert write_calls(world.server) == 2


def test_a_plan_comment_of_an_older_push_is_refused(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.push_to_pull(REPO_NAME, number, "9" * 40)
    world.github.merge_pull(REPO_NAME, number, MERGE)
    run = world.apply()
    assert run.code == 3
    assert "is for commit 111111111111, but the pull request's last commit is 999999999999" in (
        run.err
    )
    assert write_calls(world.server) == 0


def test_a_second_app_applies_while_one_bot_of_the_first_is_refused(world: World) -> None:
    world.both("app", "second", key_var="RC2_KEY", secret_var="RC2_SECRET", extra=GIT_STATE)
    world.both("bot", "second-bot", app="second")
    merged_and_applied(world)
    world.both("bot", "helper-bot", name="Helper Two")
    world.both("bot", "second-bot", app="second", name="Second Two")
    number = open_pull(world, "6" * 40)
    assert world.plan(number, head="6" * 40).code == 0
    with client_for(world.server) as client:  # the reviewed bot is deleted in the console
        client.delete_bot("helper-bot")
    world.github.merge_pull(REPO_NAME, number, "7" * 40)
    run = world.apply(sha="7" * 40)
    assert run.code == 1, run.log
    assert (
        "error: app demo: bot helper-bot refused: deleted on the server outside git: creating it"
        " again would revert a deletion nobody reviewed" in run.err
    )
    assert write_calls(world.server, SECOND_KEY) == 2  # second: created, then updated
    body = next(c for c in world.comments(number) if "provisioner:apply" in c["body"])["body"]
    assert "| `demo` | ⛔ refused (1 bot refused) |" in body
    assert "| `second` | ✅ applied | 1 | 0 | 0 |  |" in body


def test_a_blocked_app_is_refused_on_apply_and_does_not_stop_the_others(world: World) -> None:
    world.both("app", "second", key_var="RC2_KEY", secret_var="RC2_SECRET", extra=GIT_STATE)
    world.both("bot", "second-bot", app="second")
    merged_and_applied(world)
    world.both("remove_bot", "second-bot", app="second")
    world.both("bot", "assistant-bot", name="Assistant Two")
    number = open_pull(world, "6" * 40)
    assert world.plan(number, head="6" * 40).code == 3
    world.github.merge_pull(REPO_NAME, number, "7" * 40)
    run = world.apply(sha="7" * 40)
    assert run.code == 3, run.log
    assert world.state().bots["assistant-bot"].spec["name"] == "Assistant Two"
    assert sorted(world.state("second").bots) == ["second-bot"]
    body = next(c for c in world.comments(number) if "provisioner:apply" in c["body"])["body"]
    assert "| `second` | ⛔ refused |" in body and "| `demo` | ✅ applied | 1 |" in body


# --- github drift ---------------------------------------------------------------------------------


def test_the_drift_issue_is_opened_updated_reopened_and_closed(world: World) -> None:
    merged_and_applied(world)
    clean = world.drift()
    assert clean.code == 0, clean.log
    assert world.github.issues_of(REPO_NAME) == []
    with client_for(world.server) as client:
        bot = {b.userId: b for b in client.query_bots()}["helper-bot"]
        client.update_bot(BotPayload.model_validate({**bot.model_dump(), "name": "By hand"}))
    opened = world.drift()
    assert opened.code == 2, opened.log
    assert "Drift issue #2: opened" in opened.out
    (issue,) = world.github.issues_of(REPO_NAME)
    assert issue["state"] == "open" and issue["labels"][0]["name"] == "provisioner-drift"
    assert "`helper-bot`" in issue["body"]
    assert world.drift().out.count("Drift issue #2: updated") == 1
    with_token(world.github, issue["number"], {"state": "closed"})
    assert "Drift issue #2: reopened" in world.drift().out
    assert world.github.issue(REPO_NAME, issue["number"])["state"] == "open"
    fixed = world.apply("--auto-approve", event="workflow_dispatch", sha="8" * 40)
    assert fixed.code == 0, fixed.log
    closing = world.drift()
    assert closing.code == 0
    assert "Drift issue #2: closed" in closing.out
    closed = world.github.issue(REPO_NAME, issue["number"])
    assert closed["state"] == "closed"
    assert "No drift found" in world.comments(issue["number"])[-1]["body"]


def with_token(github: GitHubFake, number: int, changes: Mapping[str, str]) -> None:
    """Someone edits the issue by hand."""
    import httpx

    httpx.patch(
        f"{github.api_url}/repos/{REPO_NAME}/issues/{number}",
        json=dict(changes),
        headers={
            "Authorization": "Bearer ghp_fakeHumanToken0123456789abcdef",
            "User-Agent": "test",
        },
    ).raise_for_status()


def test_provisioner_drift_reports_without_github(world: World) -> None:
    merged_and_applied(world)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(world.main.root)
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        assert main(["drift"]) == 0
        assert world.capsys.readouterr().out == "demo: clean\n"
        with client_for(world.server) as client:
            client.delete_bot("helper-bot")
        assert main(["drift", "--format", "json"]) == 2
        document = json.loads(world.capsys.readouterr().out)
    assert document["failures"] == []
    assert [d["user_id"] for d in document["plans"][0]["drift"]] == ["helper-bot"]
    record = seen_record(world)  # recorded for pull-request plans, outside CI without a link
    assert (record["run"], record["bots"]["helper-bot"]) == (
        None,
        {"fields": [], "status": "missing"},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(world.main.root)
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        assert main(["drift", "--no-record"]) == 2
    assert seen_record(world) == record


# --- what the last drift run saw, on pull requests --------------------------------------------


def seen_record(world: World, app: str = "demo") -> dict[str, Any]:
    text = branch_file(world.tmp / "origin.git", f"drift/{app}.json")
    assert text is not None
    found: dict[str, Any] = json.loads(text)
    return found


def test_a_console_change_seen_by_the_drift_run_is_shown_on_the_next_pull_request(
    world: World,
) -> None:
    merged_and_applied(world)
    number = open_pull(world, "6" * 40)
    before = world.plan(number, head="6" * 40)
    assert "  demo: no drift run recorded yet\n" not in before.out  # no change, nothing to say
    with client_for(world.server) as client:  # someone renames a bot in the console
        bot = {b.userId: b for b in client.query_bots()}["helper-bot"]
        client.update_bot(BotPayload.model_validate({**bot.model_dump(), "name": "By hand"}))
    drifted = world.drift()
    assert drifted.code == 2, drifted.log
    drift_run = f"{RUN_URL}{world.run_id}"
    record = seen_record(world)
    assert record["bots"] == {
        "assistant-bot": {"fields": [], "status": "in_sync"},
        "helper-bot": {"fields": ["name"], "status": "drifted"},
    }
    assert (record["run"], record["state"]["serial"]) == (drift_run, 2)
    assert "By hand" not in json.dumps(record)  # names and field paths, never a value
    path = world.pr.bot("helper-bot", name="Helper")
    path.write_text(path.read_text("utf-8").replace("Message AI", "Support"), "utf-8")
    run = world.plan(number, head="7" * 40)
    assert run.code == 0, run.log
    when = record["at"][:10] + " " + record["at"][11:16] + " UTC"
    assert (
        f"  demo: helper-bot drifted in `name` (seen by the drift run of {when}, {drift_run}):"
        " this merge will refuse it unless the PR sets `name` (or the app says `drift: revert`)\n"
    ) in run.out
    line = (
        f"- `demo`: `helper-bot` drifted in `name` (seen by the [drift run of {when}]"
        f"({drift_run})): this merge will refuse it unless the PR sets `name` (or the app says"
        " `drift: revert`)\n"
    )
    (comment,) = world.comments(number)
    assert line in comment["body"] and line in run.summary
    # a sharded plan: the shard job reads the record, the fan-in job shows it
    out = world.tmp / "shard-1.json"
    assert world.plan(number, "--shard", "1/1", "--results-out", str(out), head="7" * 40).code == 0
    assert world.plan(number, "--results", str(out), head="7" * 40).code == 0
    (comment,) = world.comments(number)
    assert line in comment["body"]


def test_a_bot_made_by_hand_then_declared_in_a_pull_request_is_shown_as_adopted(
    world: World,
) -> None:
    merged_and_applied(world)
    with client_for(world.server) as client:
        client.create_bot(BotPayload.model_validate({**HAND_MADE, "userId": "hr-bot"}))
    assert world.drift().code == 2
    assert seen_record(world)["bots"]["hr-bot"] == {"fields": [], "status": "unmanaged"}
    world.pr.bot("hr-bot", name="HR")
    number = open_pull(world, "6" * 40)
    run = world.plan(number, head="6" * 40)
    assert run.code == 0, run.log
    (comment,) = world.comments(number)
    assert "- `demo`: `hr-bot` exists on the server (seen by the [drift run of " in comment["body"]
    assert (
        f"({RUN_URL}{world.run_id - 1})): this merge adopts it if the server still holds exactly"
        " this spec, else refuses it\n"
    ) in comment["body"]


def test_a_record_that_cannot_be_pushed_is_a_warning_and_changes_no_exit_code(
    world: World,
) -> None:
    merged_and_applied(world)
    install_rejecting_hook(world.tmp / "origin.git").touch()  # contents: read, say
    with client_for(world.server) as client:
        client.delete_bot("helper-bot")
    run = world.drift()
    assert run.code == 2, run.log
    assert (
        "::warning title=provisioner::app demo: what this drift run saw was not recorded: git"
        " branch provisioner-state on origin: cannot write drift/demo.json: the push was"
        " refused: "
    ) in run.out
    assert "Drift issue #2: opened" in run.out
    assert branch_file(world.tmp / "origin.git", "drift/demo.json") is None


def test_a_pull_request_before_any_drift_run_says_none_was_recorded(world: World) -> None:
    run = world.plan(open_pull(world))
    assert "What the last drift run saw:\n  demo: no drift run recorded yet\n" in run.out
    (comment,) = world.comments(1)
    assert "- `demo`: no drift run recorded yet\n" in comment["body"]


# --- many apps ------------------------------------------------------------------------------------


def test_shard_jobs_fan_in_to_one_comment(world: World) -> None:
    for name in ("second", "third"):
        world.both("app", name, extra=GIT_STATE)
        world.both("bot", f"{name}-bot", app=name)
    number = open_pull(world)
    results = []
    for index in (1, 2):
        out = world.tmp / f"shard-{index}.json"
        run = world.plan(number, "--shard", f"{index}/2", "--results-out", str(out))
        assert run.code == 0, run.log
        results.append(str(out))
    assert world.comments(number) == []
    world.github.reset_calls()
    fan_in = world.plan(number, "--results", results[0], "--results", results[1])
    assert fan_in.code == 0, fan_in.log
    (comment,) = world.comments(number)
    assert sorted(app["app"] for app in plan_data(comment["body"])["apps"]) == [
        "demo",
        "second",
        "third",
    ]
    # list the comments, create one; list the labels, create ours in the repository, add it
    assert sum(world.github.calls.values()) == 5


# --- secrets -------------------------------------------------------------------------------------


def test_no_secret_value_reaches_a_comment_summary_output_or_log(world: World) -> None:
    canary = "CANARY-github-loop-dify-7c1d"
    secrets = {**SECRETS, "DIFY_KEY": canary}
    number = open_pull(world)
    world.plan(number, secrets=secrets)  # a same-repository job given the secrets anyway
    world.github.merge_pull(REPO_NAME, number, MERGE)
    world.apply(secrets=secrets)
    with client_for(world.server) as client:
        client.delete_bot("helper-bot")
    world.drift(secrets=secrets)
    texts = [comment["body"] for comment in world.comments(number)]
    texts += [issue["body"] for issue in world.github.issues_of(REPO_NAME)]
    texts += [branch_file(world.tmp / "origin.git", "demo.json") or ""]
    texts += [json.dumps(seen_record(world))]
    assert seen_record(world)["bots"]["helper-bot"]["status"] == "missing"
    for run in world.runs:
        texts += [run.summary, json.dumps(run.outputs)]
        texts += [line for line in run.log.splitlines() if not line.startswith("::add-mask::")]
        assert f"::add-mask::{canary}" in run.out
    assert not [text for text in texts if canary in text or APP_SECRET in text]
    assert not [text for text in texts if WORKFLOW_TOKEN in text]


def test_a_sharded_apply_keeps_one_outcome_comment_per_shard(world: World) -> None:
    for name in ("second", "third"):
        world.both("app", name, extra=GIT_STATE)
        world.both("bot", f"{name}-bot", app=name)
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.merge_pull(REPO_NAME, number, MERGE)
    for index in (1, 2):
        assert world.apply("--shard", f"{index}/2").code == 0
    assert world.apply("--shard", "1/2").code == 0  # a re-run edits its shard's comment
    outcomes = [c["body"] for c in world.comments(number) if "provisioner:apply" in c["body"]]
    assert sorted(body.splitlines()[0] for body in outcomes) == [
        "<!-- provisioner:apply shard=1/2 -->",
        "<!-- provisioner:apply shard=2/2 -->",
    ]
    applied = "".join(outcomes)
    assert all(f"| `{app}` |" in applied for app in ("demo", "second", "third"))


def test_auto_approve_does_not_cover_a_merged_pull_request_without_a_trusted_plan(
    world: World,
) -> None:
    number = open_pull(world)
    forged = "<!-- provisioner:plan -->\nlooks fine\n<!-- provisioner:plan-data {} -->"
    world.github.add_comment(REPO_NAME, number, forged, author=HUMAN_LOGIN)
    world.github.merge_pull(REPO_NAME, number, MERGE)
    run = world.apply("--auto-approve")
    assert run.code == 3
    assert (
        f"error: pull request #{number} has no plan comment by github-actions[bot]; ignored "
        in (run.err)
    )
    assert write_calls(world.server) == 0
