"""The GitOps loop on GitLab end to end: runner-shaped environments for each pipeline type
(merge request, fork merge request, push to the default branch, schedule, manual job),
the GitLab stand-in (tests/gitlab_fake.py), the emulator and real git, through the real CLI.
"""

from __future__ import annotations

import json

from tests.apply_support import write_calls
from tests.github_world import SECRETS
from tests.gitlab_fake import BOT_ID, BOT_TOKEN, HUMAN_TOKEN, JOB_TOKEN, Fault
from tests.gitlab_world import (
    APPLY_MARKER,
    HEAD,
    MERGE,
    PLAN_MARKER,
    GitLabWorld,
    gitlab_world,
    merged_and_applied,
    plan_data,
)

__all__ = ["gitlab_world"]


def test_plan_posts_one_note_without_any_secret_and_edits_it_on_each_push(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD)
    job = world.plan(iid)
    assert job.code == 0, job.log
    (note,) = world.notes(iid)
    assert note.startswith(PLAN_MARKER + "\n## provisioner plan: 1 of 1 apps with changes")
    assert plan_data(note)["head_sha"] == HEAD
    assert "[pipeline job](https://gitlab.example.cn/g/bots/-/jobs/" in note
    assert write_calls(world.server) == 0
    assert json.loads(job.files["tf.json"]) == {"create": 2, "update": 0, "delete": 0}
    assert "PROVISIONER_CHANGES=true\n" in job.files["report.env"]
    assert "## " in job.files["plan.md"] or "demo" in job.files["plan.md"]
    assert "section_start:" in job.out and "section_end:" in job.out
    world.gitlab.push(iid, "3" * 40)
    world.mr.bot("assistant-bot", name="Assistant Two")
    again = world.plan(iid, head="3" * 40)
    assert again.code == 0, again.log
    (edited,) = world.notes(iid)
    assert plan_data(edited)["head_sha"] == "3" * 40
    assert world.gitlab.calls["PUT /projects/{id}/merge_requests/{iid}/notes/{note_id}"] == 1


def test_merge_then_apply_makes_the_reviewed_changes_and_posts_the_outcome(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    iid = merged_and_applied(world)
    assert set(world.state().bots) == {"assistant-bot", "helper-bot"}
    (outcome,) = world.notes(iid, APPLY_MARKER)
    assert "| `demo` | ✅ applied | 2 | 0 | 0 |  |" in outcome
    assert "[pipeline job](https://gitlab.example.cn/g/bots/-/jobs/" in outcome


def test_plan_refuses_outside_a_merge_request_pipeline(gitlab_world: GitLabWorld) -> None:
    job = gitlab_world.plan(1, CI_PIPELINE_SOURCE="push")
    assert job.code == 1
    assert (
        "error: `gitlab plan` runs in merge request pipelines only; this pipeline's source is"
        " push" in job.err
    )


def test_a_fork_merge_request_posts_nothing_and_needs_no_token(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD, source_project_id=77)
    world.gitlab.calls.clear()
    job = world.plan(iid, fork=True)
    assert job.code == 0, job.log
    assert world.notes(iid) == []
    assert sum(world.gitlab.calls.values()) == 0
    assert "no note is posted" in job.out
    assert json.loads(job.files["tf.json"])["create"] == 2


def test_a_direct_push_applies_nothing_without_auto_approve(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    world.gitlab.commits.add(MERGE)
    job = world.apply()
    assert job.code == 3
    assert "no merged merge request has commit 222222222222" in job.err
    assert write_calls(world.server) == 0
    forced = world.apply("--auto-approve")
    assert forced.code == 0, forced.log
    assert set(world.state().bots) == {"assistant-bot", "helper-bot"}


def test_the_tokens_never_reach_a_log_a_note_or_a_file(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    merged_and_applied(world)
    world.drift()
    texts = [job.log for job in world.jobs]
    texts += [text for job in world.jobs for text in job.files.values()]
    texts += [note["body"] for note in world.gitlab.all_notes.values()]
    texts += [issue["description"] for issue in world.gitlab.issues()]
    for secret in (BOT_TOKEN, JOB_TOKEN, HUMAN_TOKEN, *SECRETS.values()):
        assert not any(secret in text for text in texts), secret
    assert str(BOT_ID)  # the trusted user is named by id, never by token


def test_the_tokens_stay_out_of_failures_with_debug(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD)
    world.gitlab.fail_next(
        "POST /projects/{id}/merge_requests/{iid}/notes",
        Fault(500, {"message": f"boom {BOT_TOKEN}"}),  # even a server echoing the token
    )
    failed = world.plan(iid, "--debug")
    assert failed.code == 1
    assert "GitLab refused POST /projects/42/merge_requests/1/notes (HTTP 500)" in failed.err
    refused = world.plan(iid, PROVISIONER_GITLAB_TOKEN="glpat-revokedToken000000000000")
    assert refused.code == 1 and "GitLab refused GET /user (HTTP 401)" in refused.err
    missing = world.run(
        world.mr,
        ["gitlab", "plan"],
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(iid),
            "CI_COMMIT_SHA": HEAD,
        },
    )
    assert missing.code == 1
    assert (
        "error: PROVISIONER_GITLAB_TOKEN is not set: CI_JOB_TOKEN cannot post notes" in missing.err
    )
    for job in world.jobs:
        for secret in (BOT_TOKEN, JOB_TOKEN, "glpat-revokedToken000000000000"):
            assert secret not in job.log and not any(secret in t for t in job.files.values())


def test_a_merged_results_pipeline_reviews_the_source_branch_head(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD)
    job = world.plan(
        iid,
        head="4" * 40,  # GitLab's internal merge commit
        CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
        CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=HEAD,
    )
    assert job.code == 0, job.log
    assert plan_data(world.notes(iid)[0])["head_sha"] == HEAD
    world.gitlab.merge(iid, MERGE)
    assert world.apply().code == 0


def test_the_pending_plan_of_a_schedule_needs_a_number(gitlab_world: GitLabWorld) -> None:
    job = gitlab_world.apply(source="schedule")
    assert job.code == 3
    assert "a schedule pipeline applies no merge request's reviewed plan" in job.err
