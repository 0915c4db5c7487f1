"""`github plan` labels the pull request from its plan, end to end against the GitHub
stand-in's labels API: ours created when missing, stale ones of ours removed, anybody
else's untouched; renamed or turned off with --pr-labels / PROVISIONER_PR_LABELS."""

from __future__ import annotations

import pytest

from provisioner.errors import GitHubError
from provisioner.github.client import GitHubClient, Repo
from tests.github_fake import REPO_NAME, WORKFLOW_TOKEN, GitHubFake
from tests.github_world import HEAD, World, merged_and_applied, open_pull, pull_event

REPO = Repo.parse(REPO_NAME)


def labels(world: World, number: int) -> list[str]:
    return world.github.issue_label_names(REPO_NAME, number)


def test_labels_follow_the_plan_and_leave_other_labels_alone(world: World) -> None:
    merged_and_applied(world)
    world.pr.bot("assistant-bot", name="Assistant Two")
    number = open_pull(world, "6" * 40)
    with GitHubClient(WORKFLOW_TOKEN, api_url=world.github.api_url) as client:
        client.add_labels(REPO, number, ["needs-design"])  # a person's label
    first = world.plan(number, head="6" * 40)
    assert first.code == 0, first.log
    assert labels(world, number) == ["needs-design", "provisioner:changes"]
    made = world.github.repo_labels(REPO_NAME)["provisioner:changes"]
    assert (made["color"], made["description"]) == (
        "fbca04",
        "provisioner: the plan creates, adopts, updates or deletes bots",
    )
    assert "Labels: +provisioner:changes" in first.out

    world.pr.remove_bot("helper-bot")
    second = world.plan(number, head="7" * 40)
    assert second.code == 0, second.log
    assert labels(world, number) == ["needs-design", "provisioner:changes", "provisioner:delete"]

    world.pr.bot("assistant-bot", name="Assistant")  # back to what is applied
    world.pr.bot("helper-bot", name="Helper")
    world.github.reset_calls()
    third = world.plan(number, head="8" * 40)
    assert third.code == 0, third.log
    assert labels(world, number) == ["needs-design", "provisioner:no-changes"]
    calls = world.github.calls
    assert calls["POST /repos/{owner}/{repo}/labels"] == 1  # no-changes was new
    assert calls["DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}"] == 2
    assert "Labels: +provisioner:no-changes -provisioner:changes -provisioner:delete" in third.out

    world.github.reset_calls()
    assert world.plan(number, head="9" * 40).code == 0  # nothing to change: one listing
    label_calls = {route: n for route, n in world.github.calls.items() if "labels" in route}
    assert label_calls == {"GET /repos/{owner}/{repo}/issues/{number}/labels": 1}


def test_a_blocked_plan_is_labelled_blocked(world: World) -> None:
    merged_and_applied(world)
    world.pr.remove_bot("assistant-bot")
    world.pr.remove_bot("helper-bot")
    number = open_pull(world, "6" * 40)
    run = world.plan(number, head="6" * 40)
    assert run.code == 3, run.log
    assert labels(world, number) == [
        "provisioner:changes",
        "provisioner:delete",
        "provisioner:blocked",
    ]


def test_labels_can_be_renamed_or_turned_off(world: World) -> None:
    number = open_pull(world)
    run = world.plan(number, secrets={"PROVISIONER_PR_LABELS": "changes=bots:changed"})
    assert run.code == 0, run.log
    assert labels(world, number) == ["bots:changed"]
    off = world.plan(number, "--pr-labels", "off")
    assert off.code == 0, off.log
    assert labels(world, number) == ["bots:changed"]  # off: nothing is touched
    bad = world.plan(number, "--pr-labels", "removed=x")
    assert bad.code == 1
    assert "--pr-labels: 'removed=x' is not KIND=NAME" in bad.err


def test_an_existing_label_is_used_and_a_fork_gets_none(world: World) -> None:
    number = open_pull(world)
    with GitHubClient(WORKFLOW_TOKEN, api_url=world.github.api_url) as client:
        assert client.create_label(REPO, "Provisioner:Changes", "000000", "ours, by hand")
    assert world.plan(number).code == 0
    assert labels(world, number) == ["Provisioner:Changes"]  # names compare case-insensitively
    assert world.github.repo_labels(REPO_NAME)["Provisioner:Changes"]["color"] == "000000"

    fork = world.github.add_pull(REPO_NAME, head_sha=HEAD, head_repo="mallory/bots")
    payload = pull_event(fork, HEAD, head_repo="mallory/bots")
    run = world.run(world.pr, ["plan"], event="pull_request", payload=payload)
    assert run.code == 0, run.log
    assert labels(world, fork) == []


def test_the_labels_api_answers_as_github_documents(github: GitHubFake) -> None:
    github.add_repo(REPO_NAME)
    number = github.add_issue(REPO_NAME, title="x")
    with GitHubClient(WORKFLOW_TOKEN, api_url=github.api_url) as client:
        assert client.create_label(REPO, "a", "ededed", "")
        assert not client.create_label(REPO, "A", "ededed", "")  # 422 already_exists
        with pytest.raises(GitHubError) as caught:
            client.create_label(REPO, "b", "not-a-colour", "")
        assert caught.value.status == 422
        assert "color invalid" in caught.value.message
        client.add_labels(REPO, number, ["a", "new"])
        assert [label.name for label in client.issue_labels(REPO, number)] == ["a", "new"]
        assert client.remove_label(REPO, number, "new")
        assert not client.remove_label(REPO, number, "new")  # 404 Label does not exist
        with pytest.raises(GitHubError) as missing:
            client.issue_labels(REPO, 999)
        assert missing.value.status == 404
