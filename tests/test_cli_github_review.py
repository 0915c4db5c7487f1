"""The review model end to end: a reviewed change per bot, and refusals that always have a
reviewed way forward (``github apply --pending N``), as users live the loop.

Runner-shaped environments, the GitHub stand-in, the emulator over loopback and real git (a
bare origin holding the state branch; one clone per job: ``pr`` without secrets, ``main``
with them), through the real CLI. Each scenario jammed the loop before the per-bot review.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from provisioner.cli import main
from provisioner.rongcloud import BotPayload
from tests.apply_support import client_for, write_calls
from tests.github_fake import REPO_NAME
from tests.github_world import (
    GIT_STATE,
    HAND_MADE,
    MERGE,
    SECRETS,
    World,
    merged_and_applied,
    open_pull,
    plan_data,
)

PENDING_MARKER = "<!-- provisioner:pending -->"


def console_edit(world: World, user_id: str, **fields: Any) -> None:
    """Someone changes a bot in RongCloud's console (outside git)."""
    with client_for(world.server) as client:
        bot = {b.userId: b for b in client.query_bots()}[user_id]
        client.update_bot(BotPayload.model_validate({**bot.model_dump(), **fields}))


def set_metadata(world: World, user_id: str, version: str, *, where: str = "both") -> None:
    for clone in (world.pr, world.main) if where == "both" else (getattr(world, where),):
        path = clone.root / "bots" / "demo" / f"{user_id}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r'version: "\d+"', f'version: "{version}"', text), "utf-8")


def outcome(world: World, number: int, marker: str = "<!-- provisioner:apply -->") -> str:
    bodies = [c["body"] for c in world.comments(number) if c["body"].startswith(marker)]
    assert len(bodies) == 1, bodies
    return bodies[0]


def pending_comments(world: World, number: int) -> list[str]:
    return [c["body"] for c in world.comments(number) if c["body"].startswith(PENDING_MARKER)]


def merge(world: World, number: int, sha: str) -> None:
    world.github.merge_pull(REPO_NAME, number, sha)


def reviewed(world: World, head: str) -> int:
    """A pull request at ``head``, planned (no secret), with its comment."""
    number = open_pull(world, head)
    planned = world.plan(number, head=head)
    assert planned.code == 0, planned.log
    return number


# --- finding 1: one bot changed outside git ---------------------------------------------------


def test_a_console_change_to_one_bot_does_not_block_a_merge_of_another(world: World) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    world.both("bot", "assistant-bot", name="Assistant Two")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    before = write_calls(world.server)
    run = world.apply(sha="7" * 40)
    assert run.code == 0, run.log
    assert write_calls(world.server) == before + 1  # the assistant's update, nothing else
    assert world.state().bots["assistant-bot"].spec["name"] == "Assistant Two"
    body = outcome(world, number)
    assert "| `demo` | ✅ applied | 1 | 0 | 0 |  |" in body
    assert "- `assistant-bot`: ✅ updated" in body
    assert (
        "- `helper-bot`: ➖ left alone: changed on the server outside git; this merge did not"
        " change it — see the drift issue" in body
    )
    assert pending_comments(world, number) == []
    with client_for(world.server) as client:  # the console's change is still there
        assert {b.userId: b.name for b in client.query_bots()}["helper-bot"] == "By hand"


def test_a_pull_request_accepting_the_drift_lands_without_a_call(world: World) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    world.both("bot", "helper-bot", name="By hand")  # git takes the server's version
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    before = write_calls(world.server)
    run = world.apply(sha="7" * 40)
    assert run.code == 0, run.log
    assert write_calls(world.server) == before
    assert world.state().bots["helper-bot"].spec["name"] == "By hand"
    assert "- `helper-bot`: ✅ already as declared on the server (recorded, no call)" in outcome(
        world, number
    )
    assert world.drift().code == 0  # clean again


# --- finding 2: export -> pull request -> merge -------------------------------------------------


def test_an_exported_bot_is_adopted_through_a_pull_request(world: World) -> None:
    merged_and_applied(world)
    with client_for(world.server) as client:
        client.create_bot(BotPayload.model_validate({**HAND_MADE, "userId": "hr-bot"}))
    exported = _export(world, "hr-bot")
    (world.pr.root / "bots" / "demo" / "hr-bot.yaml").write_text(exported, encoding="utf-8")
    number = open_pull(world, "6" * 40)
    assert world.plan(number, head="6" * 40).code == 0
    (app,) = plan_data(world.comments(number)[0]["body"])["apps"]
    assert [(c["action"], c["user_id"]) for c in app["changes"]] == [("create", "hr-bot")]
    merge(world, number, "7" * 40)
    before = write_calls(world.server)
    run = world.apply(sha="7" * 40)
    assert run.code == 0, run.log
    assert write_calls(world.server) == before  # adopted: no write call
    assert "hr-bot" in world.state().bots
    assert "- `hr-bot`: ✅ adopted (the server already held it as declared; no call)" in (
        outcome(world, number)
    )


def _export(world: World, user_id: str) -> str:
    """``provisioner export`` in the main clone (credentials), as a user would run it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(world.main.root)
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        assert main(["export", "demo", "--merge"]) == 0
    world.capsys.readouterr()
    path = world.main.root / "bots" / "demo" / f"{user_id}.yaml"
    return path.read_text(encoding="utf-8")


# --- finding 3: two quick merges ----------------------------------------------------------------


def test_two_quick_merges_both_apply(world: World) -> None:
    merged_and_applied(world)
    world.pr.bot("assistant-bot", name="Assistant Two")
    first = reviewed(world, "6" * 40)
    world.pr.bot("assistant-bot", name="Assistant")  # the second branch leaves it alone
    world.pr.bot("helper-bot", name="Helper Two")
    second = reviewed(world, "8" * 40)
    world.main.bot("assistant-bot", name="Assistant Two")
    world.main.bot("helper-bot", name="Helper Two")  # both merged before either apply ran
    merge(world, first, "7" * 40)
    merge(world, second, "9" * 40)
    assert world.apply(sha="7" * 40).code == 0
    run = world.apply(sha="9" * 40)
    assert run.code == 0, run.log
    names = {user_id: bot.spec["name"] for user_id, bot in world.state().bots.items()}
    assert names == {"assistant-bot": "Assistant Two", "helper-bot": "Helper Two"}
    assert "- `helper-bot`: ✅ updated" in outcome(world, second)


def test_a_bot_changed_again_after_its_review_is_refused(world: World) -> None:
    merged_and_applied(world)
    world.pr.bot("assistant-bot", name="Assistant Two")
    first = reviewed(world, "6" * 40)
    world.pr.bot("assistant-bot", name="Assistant")
    set_metadata(world, "assistant-bot", "2", where="pr")
    second = reviewed(world, "8" * 40)
    world.main.bot("assistant-bot", name="Assistant Two")
    merge(world, first, "7" * 40)
    assert world.apply(sha="7" * 40).code == 0
    set_metadata(world, "assistant-bot", "2", where="main")  # the second merge combines both
    merge(world, second, "9" * 40)
    run = world.apply(sha="9" * 40)
    assert run.code == 1, run.log
    assert (
        "error: app demo: bot assistant-bot refused: its manifest is not the one reviewed"
        " (changed after the review, by a later push or another change)" in run.err
    )
    assert world.state().bots["assistant-bot"].spec["metadata"] == {"version": "1"}
    assert "| `demo` | ⛔ refused (1 bot refused) |" in outcome(world, second)
    (pending,) = pending_comments(world, second)
    assert "assistant-bot" in pending


# --- refusals with a reviewed way forward -----------------------------------------------------


def test_drift_in_a_field_the_change_does_not_set_is_refused_then_applied_by_dispatch(
    world: World,
) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    before = write_calls(world.server)
    run = world.apply(sha="7" * 40)
    assert run.code == 1, run.log
    assert write_calls(world.server) == before
    body = outcome(world, number)
    assert (
        "- `helper-bot`: ⛔ refused: drifted on the server in `name`, which this change does not"
        " set: applying it would revert a change nobody reviewed — **what to do:**" in body
    )
    assert "**What remains** is in the pending plan https://github.com/" in body
    (pending,) = pending_comments(world, number)
    assert "## provisioner: pending plan for 1 app (`demo`)" in pending
    assert f"`provisioner github apply --pending {number}`" in pending
    dispatched = world.apply("--pending", str(number), event="workflow_dispatch", sha="7" * 40)
    assert dispatched.code == 0, dispatched.log
    assert write_calls(world.server) == before + 1
    spec = world.state().bots["helper-bot"].spec
    assert (spec["name"], spec["metadata"]) == ("Helper", {"version": "2"})
    assert "| `demo` | ✅ applied | 1 | 0 | 0 |  |" in outcome(
        world, number, "<!-- provisioner:apply-pending -->"
    )


def test_drift_revert_in_app_yaml_reverts_and_says_so(world: World) -> None:
    world.both("app", extra=GIT_STATE + "drift: revert\n")
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    run = world.apply(sha="7" * 40)
    assert run.code == 0, run.log
    assert (
        "- `helper-bot`: ✅ updated; reverted: drifted on the server in `name`, which this"
        " change does not set (the app says drift: revert)" in outcome(world, number)
    )
    assert world.state().bots["helper-bot"].spec["name"] == "Helper"


def test_a_pending_plan_that_no_longer_matches_is_not_applied_but_posted_again(
    world: World,
) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    assert world.apply(sha="7" * 40).code == 1
    console_edit(world, "helper-bot", name="By hand again")  # after the reviewer read it
    before = write_calls(world.server)
    run = world.apply("--pending", str(number), event="workflow_dispatch", sha="7" * 40)
    assert run.code == 1, run.log
    assert write_calls(world.server) == before
    assert "the plan for app demo is no longer the pending one" in run.err
    assert len(pending_comments(world, number)) == 2


def test_a_create_meeting_another_bot_under_its_user_id_is_refused(world: World) -> None:
    merged_and_applied(world)
    with client_for(world.server) as client:
        client.create_bot(BotPayload.model_validate({**HAND_MADE, "userId": "new-bot"}))
    world.both("bot", "new-bot", name="New")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    before = write_calls(world.server)
    run = world.apply(sha="7" * 40)
    assert run.code == 1, run.log
    assert write_calls(world.server) == before
    assert (
        "- `new-bot`: ⛔ refused: a bot with this userId is already on the server with another"
        " spec" in outcome(world, number)
    )
    assert len(pending_comments(world, number)) == 1


def test_a_merge_of_an_unreviewed_push_is_refused_on_the_pull_request(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0
    world.github.push_to_pull(REPO_NAME, number, "9" * 40)
    merge(world, number, MERGE)
    run = world.apply()
    assert run.code == 3
    assert write_calls(world.server) == 0
    body = outcome(world, number)
    assert "| `demo` | ⛔ refused |" in body and "is for commit 111111111111" in body
    (pending,) = pending_comments(world, number)
    assert "Nothing of pull request #1 was applied" in pending


def test_the_drift_issue_carries_the_revert_as_a_pending_plan(world: World) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    assert world.drift().code == 2
    (issue,) = world.github.issues_of(REPO_NAME)
    assert "**two ways out**" in issue["body"]
    assert "### The pending plan (what reverting would do)" in issue["body"]
    number = issue["number"]
    run = world.apply("--pending", str(number), event="workflow_dispatch", sha=MERGE)
    assert run.code == 0, run.log
    assert world.state().bots["helper-bot"].spec["name"] == "Helper"
    with client_for(world.server) as client:
        assert {b.userId: b.name for b in client.query_bots()}["helper-bot"] == "Helper"
    assert world.drift().code == 0
    assert world.github.issue(REPO_NAME, number)["state"] == "closed"


def test_a_secret_rotated_outside_git_is_applied_with_a_reviewed_change_of_its_bot(
    world: World,
) -> None:
    merged_and_applied(world)
    world.both("bot", "assistant-bot", name="Assistant Two")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    rotated = {**SECRETS, "DIFY_KEY": "dify-rotated-key-9999"}
    run = world.apply(sha="7" * 40, secrets=rotated)
    assert run.code == 0, run.log
    body = outcome(world, number)
    assert "- `assistant-bot`: ✅ updated; also a secret changed outside git: ${DIFY_KEY}" in body
    assert "- `helper-bot`: ➖ left alone: a secret changed outside git: ${DIFY_KEY}" in body
    assert "dify-rotated-key-9999" not in run.log.replace("::add-mask::dify-rotated-key-9999", "")
    drift = world.drift(secrets=rotated)
    assert drift.code == 2
    (issue,) = world.github.issues_of(REPO_NAME)
    pending = world.apply(
        "--pending", str(issue["number"]), event="workflow_dispatch", sha="7" * 40, secrets=rotated
    )
    assert pending.code == 0, pending.log
    assert world.drift(secrets=rotated).code == 0


def test_the_comment_records_a_digest_per_bot_without_any_secret(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0
    (app,) = plan_data(world.comments(number)[0]["body"])["apps"]
    for change in app["changes"]:
        assert re.fullmatch(r"sha256:[0-9a-f]{32}", change["digest"])
        assert change["source"] == f"bots/demo/{change['user_id']}.yaml"
    with_secrets = world.plan(number, secrets=SECRETS)  # the same digests with the values
    assert with_secrets.code == 0
    (again,) = plan_data(world.comments(number)[0]["body"])["apps"]
    assert [c["digest"] for c in again["changes"]] == [c["digest"] for c in app["changes"]]


def test_no_secret_reaches_the_outcome_the_pending_plan_or_their_logs(world: World) -> None:
    canary = "CANARY-review-model-dify-3b9e"
    secrets = {**SECRETS, "DIFY_KEY": canary}
    number = open_pull(world)
    assert world.plan(number).code == 0
    merge(world, number, MERGE)
    assert world.apply(secrets=secrets).code == 0
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2")
    second = reviewed(world, "6" * 40)
    merge(world, second, "7" * 40)
    assert world.apply(sha="7" * 40, secrets=secrets).code == 1
    assert pending_comments(world, second)
    pending = world.apply(
        "--pending", str(second), event="workflow_dispatch", sha="7" * 40, secrets=secrets
    )
    assert pending.code == 0, pending.log
    console_edit(world, "assistant-bot", name="By hand")
    assert world.drift(secrets=secrets).code == 2
    texts = [c["body"] for n in (number, second) for c in world.comments(n)]
    texts += [issue["body"] for issue in world.github.issues_of(REPO_NAME)]
    for run in world.runs:
        texts += [run.summary, str(run.outputs)]
        texts += [line for line in run.log.splitlines() if not line.startswith("::add-mask::")]
    assert not [text for text in texts if canary in text]
