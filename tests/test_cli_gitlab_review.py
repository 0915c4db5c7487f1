"""The review model on GitLab end to end, as on GitHub (tests/test_cli_github_review.py):
drift between merges, an adoption, two quick merges, a refusal applied through its pending
plan (``gitlab apply --pending N``), the drift issue opened, updated and closed, and notes
that only look like ours (forged, hijacked, GitLab's system notes) ignored."""

from __future__ import annotations

from provisioner.rongcloud import BotPayload
from tests.apply_support import client_for, write_calls
from tests.github_world import HAND_MADE
from tests.gitlab_fake import HUMAN_TOKEN
from tests.gitlab_world import (
    APPLY_MARKER,
    MERGE,
    PENDING_MARKER,
    PLAN_MARKER,
    GitLabWorld,
    gitlab_world,
    merged_and_applied,
    plan_data,
    reviewed,
)
from tests.test_cli_github_review import _export, console_edit, set_metadata

__all__ = ["gitlab_world"]


def _outcome(world: GitLabWorld, iid: int, marker: str = APPLY_MARKER) -> str:
    (body,) = world.notes(iid, marker)
    return body


def test_a_console_change_to_one_bot_does_not_block_a_merge_of_another(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    world.both("bot", "assistant-bot", name="Assistant Two")
    iid = reviewed(world, "6" * 40)
    world.gitlab.merge(iid, "7" * 40)
    before = write_calls(world.server)
    job = world.apply(sha="7" * 40)
    assert job.code == 0, job.log
    assert write_calls(world.server) == before + 1
    body = _outcome(world, iid)
    assert "- `assistant-bot`: ✅ updated" in body
    assert "- `helper-bot`: ➖ left alone: changed on the server outside git" in body


def test_an_exported_bot_is_adopted_through_a_merge_request(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    merged_and_applied(world)
    with client_for(world.server) as client:
        client.create_bot(BotPayload.model_validate({**HAND_MADE, "userId": "hr-bot"}))
    exported = _export(world, "hr-bot")  # in the main clone, as a user would run it
    (world.mr.root / "bots" / "demo" / "hr-bot.yaml").write_text(exported, encoding="utf-8")
    iid = reviewed(world, "6" * 40)
    world.gitlab.merge(iid, "7" * 40, squash=True)  # a squash merge
    before = write_calls(world.server)
    job = world.apply(sha="7" * 40)
    assert job.code == 0, job.log
    assert "hr-bot" in world.state().bots
    assert write_calls(world.server) == before
    assert "- `hr-bot`: ✅ adopted" in _outcome(world, iid)


def test_two_quick_merges_both_apply(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    merged_and_applied(world)
    world.mr.bot("assistant-bot", name="Assistant Two")
    first = reviewed(world, "6" * 40)
    world.mr.bot("assistant-bot", name="Assistant")
    world.mr.bot("helper-bot", name="Helper Two")
    second = reviewed(world, "8" * 40)
    world.main.bot("assistant-bot", name="Assistant Two")
    world.main.bot("helper-bot", name="Helper Two")
    world.gitlab.merge(first, "7" * 40)
    world.gitlab.merge(second, "9" * 40)
    assert world.apply(sha="7" * 40).code == 0
    job = world.apply(sha="9" * 40)
    assert job.code == 0, job.log
    names = {user_id: bot.spec["name"] for user_id, bot in world.state().bots.items()}
    assert names == {"assistant-bot": "Assistant Two", "helper-bot": "Helper Two"}
    assert "- `helper-bot`: ✅ updated" in _outcome(world, second)


def test_a_refusal_posts_a_pending_plan_that_the_pending_job_applies(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2", where="both")
    iid = reviewed(world, "6" * 40)
    world.gitlab.merge(iid, "7" * 40)
    before = write_calls(world.server)
    job = world.apply(sha="7" * 40)
    assert job.code == 1, job.log
    assert write_calls(world.server) == before
    assert (  # GitLab's command and words in the hint
        "- `helper-bot`: ⛔ refused: drifted on the server in `name`, which this change does not"
        " set: applying it would revert a change nobody reviewed — **what to do:** accept the"
        " server's version (change the manifest to match it in a merge request), or revert it"
        " through the pending plan (`gitlab apply --pending`); `drift: revert` in app.yaml makes"
        " merges revert such drift\n"
    ) in _outcome(world, iid)
    assert "hint: accept the server's version (change the manifest to match it in a merge" in (
        job.err
    )
    (pending,) = world.notes(iid, PENDING_MARKER)
    assert f"`provisioner gitlab apply --pending {iid}`" in pending
    world.gitlab.add_issue("an unrelated issue with the same number", "", "")  # issue #1 too
    dispatched = world.apply("--pending", str(iid), sha="7" * 40, source="web")
    assert dispatched.code == 0, dispatched.log
    assert write_calls(world.server) == before + 1
    spec = world.state().bots["helper-bot"].spec
    assert (spec["name"], spec["metadata"]) == ("Helper", {"version": "2"})
    assert "| `demo` | ✅ applied | 1 | 0 | 0 |  |" in _outcome(
        world, iid, "<!-- provisioner:apply-pending -->"
    )


def test_the_drift_issue_is_opened_updated_and_closed_and_its_pending_plan_applies(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    assert world.drift().code == 2
    (issue,) = world.gitlab.issues()
    assert issue["state"] == "opened" and issue["labels"] == ["provisioner-drift"]
    assert issue["description"].startswith("<!-- provisioner:drift -->\n## 1 app differs")
    assert "`provisioner gitlab apply --pending <number>`" in issue["description"]
    assert world.drift().code == 2
    assert len(world.gitlab.issues()) == 1  # rewritten, not a second one
    job = world.apply("--pending", str(issue["iid"]), source="web")
    assert job.code == 0, job.log
    assert world.state().bots["helper-bot"].spec["name"] == "Helper"
    assert world.drift().code == 0
    (closed,) = world.gitlab.issues()
    assert closed["state"] == "closed"
    assert world.notes(closed["iid"], "No drift found", thread="issues")
    console_edit(world, "helper-bot", name="Again")
    assert world.drift().code == 2
    assert world.gitlab.issues()[0]["state"] == "opened"  # reopened


def test_forged_hijacked_and_system_notes_are_ignored(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    iid = reviewed(world, "1" * 40)
    (ours,) = world.notes(iid, PLAN_MARKER)
    forged = ours.replace('"head_sha":"' + "1" * 40, '"head_sha":"' + "5" * 40)
    world.gitlab.add_note("merge_requests", iid, forged, token=HUMAN_TOKEN)  # mallory forges
    world.gitlab.add_note("merge_requests", iid, "quote:\n" + ours, token=HUMAN_TOKEN)
    world.gitlab.add_note("merge_requests", iid, ours, system=True)  # a system note
    world.gitlab.push(iid, "5" * 40)  # an unreviewed push, then the merge
    world.gitlab.merge(iid, MERGE)
    job = world.apply()
    assert job.code == 3, job.log
    assert write_calls(world.server) == 0
    assert "is for commit 111111111111" in job.err
    outcome = _outcome(world, iid)
    assert "⛔ refused" in outcome
    assert plan_data(world.notes(iid, PLAN_MARKER)[0])["head_sha"] == "1" * 40


def test_a_plan_note_by_another_user_is_never_edited_or_believed(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request("1" * 40)
    world.gitlab.add_note("merge_requests", iid, PLAN_MARKER + "\nhijacked", token=HUMAN_TOKEN)
    job = world.plan(iid)
    assert job.code == 0, job.log
    assert "warning: ignored comment" in job.err and "by mallory" in job.err
    bodies = world.notes(iid, PLAN_MARKER)
    assert bodies[0] == PLAN_MARKER + "\nhijacked" and len(bodies) == 2


def test_a_pending_plan_that_no_longer_matches_is_posted_again_in_gitlabs_words(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2", where="both")
    iid = reviewed(world, "6" * 40)
    world.gitlab.merge(iid, "7" * 40)
    assert world.apply(sha="7" * 40).code == 1
    console_edit(world, "helper-bot", name="By hand again")  # after the reviewer read it
    before = write_calls(world.server)
    job = world.apply("--pending", str(iid), sha="7" * 40, source="web")
    assert job.code == 1, job.log
    assert write_calls(world.server) == before
    assert (
        "hint: nothing was changed for this app; review the new pending plan posted with this"
        " outcome, then run the `apply-pending` manual job (variable `PROVISIONER_PENDING`)"
        " again" in job.err
    )
    pending = world.notes(iid, PENDING_MARKER)
    assert len(pending) == 2
    why = f"The pending plan on !{iid} no longer matched some apps when it was applied."
    assert sum(why in body for body in pending) == 1


GITLAB_NEW_SECRETS = (
    "> **New secrets:** this merge request references variables the recorded state does not"
    " hold yet; add them to the project's CI/CD variables (masked and protected, in the"
    " environments of the apply and drift jobs) before merging:"
)


def test_the_plan_note_names_the_new_secrets_in_gitlabs_words(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    merged_and_applied(world)
    world.both("bot", "hr-bot", name="HR", dify_var="DIFY_PRODUCTION_HR_KEY")  # a new bot
    world.both("bot", "helper-bot", name="Helper", dify_var="DIFY_HELPER_KEY")  # renamed
    iid = world.gitlab.add_merge_request("6" * 40)
    planned = world.plan(iid, head="6" * 40)
    assert planned.code == 0, planned.log
    section = (
        f"\n> [!IMPORTANT]\n{GITLAB_NEW_SECRETS}\n"
        "> - `demo`: `DIFY_PRODUCTION_HR_KEY`, `DIFY_HELPER_KEY`\n\n"
    )
    (note,) = world.notes(iid, PLAN_MARKER)
    assert section in note
    assert note.index(section) < note.index("<details>")
    assert section in planned.files["plan.md"]
    assert (
        "demo: new secrets DIFY_PRODUCTION_HR_KEY, DIFY_HELPER_KEY: add them to the project's"
        " CI/CD variables (masked and protected, in the environments of the apply and drift"
        " jobs) before merging\n"
    ) in planned.out
    assert "PROVISIONER_SECRETS" not in note and "github" not in planned.out
    chinese = world.plan(iid, head="6" * 40, PROVISIONER_LANG="zh-CN")
    assert chinese.code == 0, chinese.log
    (note,) = world.notes(iid, PLAN_MARKER)
    assert (
        "> **新的机密：**此合并请求引用了已记录的状态中还没有的变量；合并之前请把它们添加为项目的"
        " CI/CD 变量（设为屏蔽（masked）并受保护（protected），环境范围限定在执行作业和漂移检查"
        "作业的环境）：\n"
        "> - `demo`: `DIFY_PRODUCTION_HR_KEY`、`DIFY_HELPER_KEY`\n"
    ) in note
    world.both("bot", "hr-bot", name="HR", dify_var="DIFY_KEY")  # nothing new any more
    world.both("bot", "helper-bot", name="Helper Two")
    again = world.plan(iid, head="7" * 40)
    assert again.code == 0, again.log
    assert "New secrets" not in world.notes(iid, PLAN_MARKER)[0]
    assert "new secrets" not in again.out and "New secrets" not in again.files["plan.md"]
