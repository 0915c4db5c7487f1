"""The GitHub writes end to end against the fake: sticky comment, reviewed plan, apply
outcome, drift issue; a constant number of calls whatever the number of apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.errors import NoMergedPullRequestError, UnreviewedPlanError
from provisioner.forge.comment import PLAN_MARKER, RunInfo, render_plan_comment
from provisioner.forge.drift import DRIFT_LABEL, DRIFT_MARKER, parse_drift_since
from provisioner.forge.outcome import AppOutcome, render_apply_outcome
from provisioner.github.client import GitHubClient, Repo
from provisioner.github.sync import (
    DriftReport,
    find_reviewed_plan,
    post_apply_outcome,
    sync_drift_issue,
    upsert_plan_comment,
)
from tests.github_fake import (
    HUMAN_LOGIN,
    REPO_NAME,
    WORKFLOW_LOGIN,
    WORKFLOW_TOKEN,
    FakeClock,
    GitHubFake,
)
from tests.github_support import deleting_doc, unchanged_doc

REPO = Repo.parse(REPO_NAME)
HEAD, MERGE = "a" * 40, "b" * 40
RUN = RunInfo("https://github.com/octo/bots/actions/runs/42", HEAD)
LIST_COMMENTS = "GET /repos/{owner}/{repo}/issues/{number}/comments"
CREATE_COMMENT = "POST /repos/{owner}/{repo}/issues/{number}/comments"
EDIT_COMMENT = "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"


@pytest.fixture
def client(github: GitHubFake, fake_clock: FakeClock) -> Iterator[GitHubClient]:
    with GitHubClient(
        WORKFLOW_TOKEN, api_url=github.api_url, sleep=fake_clock.sleep, clock=fake_clock.now
    ) as made:
        yield made


def plan_body(apps: int = 2, head: str = HEAD) -> str:
    docs = [deleting_doc(f"app-{index:03d}") for index in range(apps)]
    return render_plan_comment(docs, RunInfo(RUN.run_url, head))


# --- the sticky plan comment ------------------------------------------------------------


def test_still_one_comment_after_the_second_run(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_pull(REPO_NAME, head_sha=HEAD)
    github.add_comment(REPO_NAME, number, "LGTM", author="alice")
    first, warnings = upsert_plan_comment(client, REPO, number, plan_body())
    assert warnings == []
    body = plan_body(3)
    second, _ = upsert_plan_comment(client, REPO, number, body)
    assert second.id == first.id
    bots = [c for c in github.comments(REPO_NAME, number) if c["user"]["login"] == WORKFLOW_LOGIN]
    assert [(c["id"], c["body"]) for c in bots] == [(first.id, body)]
    assert github.calls == {LIST_COMMENTS: 2, CREATE_COMMENT: 1, EDIT_COMMENT: 1}


def test_an_unchanged_body_is_not_written_again(github: GitHubFake, client: GitHubClient) -> None:
    number = github.add_pull(REPO_NAME, head_sha=HEAD)
    body = plan_body()
    upsert_plan_comment(client, REPO, number, body)
    github.reset_calls()
    upsert_plan_comment(client, REPO, number, body)
    assert github.calls == {LIST_COMMENTS: 1}


def test_a_forged_marker_comment_is_ignored_and_reported(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = github.add_pull(REPO_NAME, head_sha=HEAD)
    forged = github.add_comment(REPO_NAME, number, f"{PLAN_MARKER}\nforged", author=HUMAN_LOGIN)
    made, warnings = upsert_plan_comment(client, REPO, number, plan_body())
    assert made.id != forged
    assert warnings == [
        f"ignored https://github.com/{REPO_NAME}/issues/{number}#issuecomment-{forged} by "
        "mallory: it carries provisioner's marker, but only what the workflow's own identity "
        "writes is trusted"
    ]
    assert github.comments(REPO_NAME, number)[0]["body"] == f"{PLAN_MARKER}\nforged"


def test_the_number_of_calls_does_not_grow_with_the_apps(
    github: GitHubFake, client: GitHubClient
) -> None:
    counts = []
    for apps in (1, 100):
        number = github.add_pull(REPO_NAME, head_sha=HEAD)
        github.reset_calls()
        upsert_plan_comment(client, REPO, number, plan_body(apps))
        upsert_plan_comment(client, REPO, number, plan_body(apps) + " ")
        counts.append(dict(github.calls))
    assert counts[0] == counts[1] == {LIST_COMMENTS: 2, CREATE_COMMENT: 1, EDIT_COMMENT: 1}


# --- the reviewed plan ------------------------------------------------------------------


def merged_pull(github: GitHubFake, *, head: str = HEAD) -> int:
    return github.add_pull(REPO_NAME, head_sha=head, merge_commit_sha=MERGE, merged=True)


def test_the_reviewed_plan_of_the_merged_pull_request(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = merged_pull(github)
    github.add_comment(REPO_NAME, number, f"{PLAN_MARKER}\nforged", author=HUMAN_LOGIN)
    upsert_plan_comment(client, REPO, number, plan_body())
    github.reset_calls()
    reviewed = find_reviewed_plan(client, REPO, MERGE)
    assert reviewed.pull.number == number
    assert sorted(reviewed.data.plan_ids) == ["app-000", "app-001"]
    assert len(reviewed.warnings) == 1 and "by mallory" in reviewed.warnings[0]
    assert github.calls == {"GET /repos/{owner}/{repo}/commits/{sha}/pulls": 1, LIST_COMMENTS: 1}


def test_no_merged_pull_request(github: GitHubFake, client: GitHubClient) -> None:
    github.add_commit(REPO_NAME, MERGE)
    with pytest.raises(NoMergedPullRequestError) as caught:
        find_reviewed_plan(client, REPO, MERGE)
    assert (
        caught.value.message == "no merged pull request has commit bbbbbbbbbbbb as its merge commit"
    )
    assert caught.value.hint == (
        "apply applies what a merged pull request reviewed: change the default branch only "
        "through pull requests (branch protection); to apply without a review (a direct push,"
        " key rotation), run `github apply --auto-approve` in a protected environment"
    )
    open_pull = github.add_pull(REPO_NAME, head_sha="c" * 40)
    with pytest.raises(UnreviewedPlanError) as caught:
        find_reviewed_plan(client, REPO, "c" * 40)
    assert caught.value.message == (
        f"no merged pull request has commit cccccccccccc as its merge commit (associated but "
        f"not merged as it: #{open_pull})"
    )


def test_only_a_forged_plan_comment(github: GitHubFake, client: GitHubClient) -> None:
    number = merged_pull(github)
    forged = github.add_comment(REPO_NAME, number, plan_body(), author=HUMAN_LOGIN)
    with pytest.raises(UnreviewedPlanError) as caught:
        find_reviewed_plan(client, REPO, MERGE)
    assert caught.value.message == (
        f"pull request #{number} has no plan comment by github-actions[bot]; ignored "
        f"https://github.com/{REPO_NAME}/issues/{number}#issuecomment-{forged} by mallory: it "
        "carries provisioner's marker, but only what the workflow's own identity writes is "
        "trusted"
    )
    assert caught.value.exit_code == 3


def test_no_plan_comment_at_all(github: GitHubFake, client: GitHubClient) -> None:
    number = merged_pull(github)
    with pytest.raises(UnreviewedPlanError) as caught:
        find_reviewed_plan(client, REPO, MERGE)
    assert not isinstance(caught.value, NoMergedPullRequestError)  # --auto-approve: no way out
    assert (
        caught.value.message == f"pull request #{number} has no plan comment by github-actions[bot]"
    )
    assert caught.value.hint == (
        "the plan job must post its comment before the merge; require the plan check to pass "
        "before merging (branch protection), and merge only pull requests whose plan comment "
        "is current"
    )


def test_a_plan_of_an_older_push_is_refused(github: GitHubFake, client: GitHubClient) -> None:
    number = merged_pull(github, head="d" * 40)
    upsert_plan_comment(client, REPO, number, plan_body(head=HEAD))
    with pytest.raises(UnreviewedPlanError) as caught:
        find_reviewed_plan(client, REPO, MERGE)
    assert caught.value.message == (
        f"the plan comment on pull request #{number} is for commit aaaaaaaaaaaa, but the pull "
        "request's last commit is dddddddddddd"
    )


def test_a_configured_github_app_identity(github: GitHubFake, fake_clock: FakeClock) -> None:
    github.add_token("ghs_appToken000000000000000000000", "bots-app[bot]", type="Bot")
    number = merged_pull(github)
    with GitHubClient("ghs_appToken000000000000000000000", api_url=github.api_url) as app:
        upsert_plan_comment(app, REPO, number, plan_body(), trusted_login="bots-app[bot]")
        assert find_reviewed_plan(app, REPO, MERGE, trusted_login="bots-app[bot]").data
        with pytest.raises(UnreviewedPlanError, match="no plan comment by github-actions"):
            find_reviewed_plan(app, REPO, MERGE)


# --- the apply outcome ------------------------------------------------------------------


def test_apply_outcome_is_one_comment_per_pull_request(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = merged_pull(github)
    upsert_plan_comment(client, REPO, number, plan_body())
    run = RunInfo("https://github.com/octo/bots/actions/runs/43", MERGE)
    first, _ = post_apply_outcome(
        client, REPO, number, render_apply_outcome([AppOutcome("a", refused="stale")], run)
    )
    second, _ = post_apply_outcome(
        client, REPO, number, render_apply_outcome([AppOutcome("a", {"applied": 1})], run)
    )
    assert first.id == second.id
    bodies = [c["body"] for c in github.comments(REPO_NAME, number)]
    assert len(bodies) == 2 and bodies[0].startswith(PLAN_MARKER)
    assert "✅ applied" in bodies[1]


def test_a_plan_comment_quoting_the_apply_marker_is_never_the_outcome_comment(
    github: GitHubFake, client: GitHubClient
) -> None:
    number = merged_pull(github)
    doc = deleting_doc("prod")
    doc["changes"][1]["fields"][0]["new"] = "<!-- provisioner:apply -->"
    plan, _ = upsert_plan_comment(client, REPO, number, render_plan_comment([doc], RUN))
    legacy = f"{PLAN_MARKER}\nname: <!-- provisioner:apply -->"  # as main wrote it, unescaped
    github.add_comment(REPO_NAME, number, legacy)
    run = RunInfo("https://github.com/octo/bots/actions/runs/43", MERGE)
    outcome, warnings = post_apply_outcome(
        client, REPO, number, render_apply_outcome([AppOutcome("prod", {"applied": 2})], run)
    )
    assert outcome.id != plan.id and warnings == []
    bodies = {c["id"]: c["body"] for c in github.comments(REPO_NAME, number)}
    assert len(bodies) == 3 and bodies[plan.id] == plan.text
    assert bodies[outcome.id].startswith("<!-- provisioner:apply -->\n")


# --- the drift issue --------------------------------------------------------------------


def drifting(app: str) -> dict[str, Any]:
    doc = unchanged_doc(app)
    doc["drift"] = [{"user_id": "assistant", "kind": "missing", "fields": []}]
    return doc


def report(*docs: dict[str, Any], now: str) -> DriftReport:
    return DriftReport(docs=docs, run_url="https://github.com/octo/bots/actions/runs/9", now=now)


def test_drift_issue_lifecycle(github: GitHubFake, client: GitHubClient) -> None:
    opened = sync_drift_issue(client, REPO, report(drifting("prod"), now="2026-12-01T06:17:00Z"))
    assert opened.action == "opened" and opened.issue is not None
    number = opened.issue.number
    issue = github.issue(REPO_NAME, number)
    assert [label["name"] for label in issue["labels"]] == [DRIFT_LABEL]
    assert issue["body"].startswith(DRIFT_MARKER)

    later = report(drifting("prod"), drifting("eu"), now="2026-12-02T06:17:00Z")
    assert sync_drift_issue(client, REPO, later).action == "updated"
    assert parse_drift_since(github.issue(REPO_NAME, number)["body"]) == {
        "eu": "2026-12-02T06:17:00Z",
        "prod": "2026-12-01T06:17:00Z",
    }

    client.update_issue(REPO, number, state="closed")  # someone closes it; drift remains
    again = sync_drift_issue(client, REPO, report(drifting("prod"), now="2026-12-03T06:17:00Z"))
    assert again.action == "reopened" and github.issue(REPO_NAME, number)["state"] == "open"
    assert parse_drift_since(github.issue(REPO_NAME, number)["body"]) == {
        "prod": "2026-12-01T06:17:00Z"
    }

    clean = sync_drift_issue(
        client, REPO, report(unchanged_doc("prod"), now="2026-12-04T06:17:00Z")
    )
    assert clean.action == "closed"
    assert github.issue(REPO_NAME, number)["state"] == "closed"
    [note] = github.comments(REPO_NAME, number)
    assert note["body"] == (
        "No drift found by [this check](https://github.com/octo/bots/actions/runs/9): every "
        "app matches git. Closing."
    )
    github.reset_calls()
    assert sync_drift_issue(client, REPO, report(unchanged_doc("prod"), now="t")).action == "none"
    assert github.write_calls == 0
    assert len(github.issues_of(REPO_NAME)) == 1


def test_drift_issue_ignores_forged_issues(github: GitHubFake, client: GitHubClient) -> None:
    forged = github.add_issue(
        REPO_NAME, title="drift", body=DRIFT_MARKER, labels=(DRIFT_LABEL,), author=HUMAN_LOGIN
    )
    synced = sync_drift_issue(client, REPO, report(drifting("prod"), now="t"))
    assert synced.action == "opened" and synced.issue is not None
    assert synced.issue.number != forged
    assert synced.warnings == (
        f"ignored https://github.com/{REPO_NAME}/issues/{forged} by mallory: it carries "
        "provisioner's drift marker, but only what the workflow's own identity writes is trusted",
    )


def test_only_an_issue_opening_with_the_drift_marker_is_the_drift_issue(
    github: GitHubFake, client: GitHubClient
) -> None:
    quoted = github.add_issue(
        REPO_NAME, title="about drift", body=f"see:\n{DRIFT_MARKER}", labels=(DRIFT_LABEL,)
    )
    synced = sync_drift_issue(client, REPO, report(drifting("prod"), now="t"))
    assert synced.action == "opened" and synced.issue is not None
    assert synced.issue.number != quoted and synced.warnings == ()
    assert synced.issue.text.startswith(f"{DRIFT_MARKER}\n")


def test_drift_failures_keep_the_issue_and_the_since(
    github: GitHubFake, client: GitHubClient
) -> None:
    from provisioner.forge.comment import AppFailure

    sync_drift_issue(client, REPO, report(drifting("prod"), now="2026-12-01T00:00:00Z"))
    failing = DriftReport(
        docs=[], failures=[AppFailure("prod", "timeout")], run_url="u", now="2026-12-02T00:00:00Z"
    )
    synced = sync_drift_issue(client, REPO, failing)
    assert synced.action == "updated" and synced.issue is not None
    assert parse_drift_since(synced.issue.text) == {"prod": "2026-12-01T00:00:00Z"}
    assert "**Could not check:**" in synced.issue.text


def test_drift_calls_are_constant(github: GitHubFake, client: GitHubClient) -> None:
    counts = []
    for apps in (1, 200):
        docs = [drifting(f"app-{index:03d}") for index in range(apps)]
        github.reset_calls()
        sync_drift_issue(client, REPO, report(*docs, now="t"))
        counts.append(dict(github.calls))
        client.update_issue(REPO, github.issues_of(REPO_NAME)[-1]["number"], state="closed")
    assert counts[0] == {
        "GET /repos/{owner}/{repo}/issues": 1,
        "POST /repos/{owner}/{repo}/issues": 1,
    }
    assert counts[1] == {
        "GET /repos/{owner}/{repo}/issues": 1,
        "PATCH /repos/{owner}/{repo}/issues/{number}": 1,
    }
