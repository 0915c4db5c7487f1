"""`gitlab apply` and `gitlab drift` notify as `github apply` and `github drift` do, end to end:
the real CLI in runner-shaped environments against the GitLab stand-in, the emulator and the
loopback robots of tests/notify_receivers.py. The run's link is the job (``CI_JOB_URL``),
else the pipeline (``CI_PIPELINE_URL``); the review's is the merge request's web page, or
the issue's (a pending plan on the drift issue)."""

from __future__ import annotations

from typing import Any

from tests.github_world import GIT_STATE
from tests.gitlab_world import (
    HEAD,
    MERGE,
    GitLabWorld,
    gitlab_world,
    merged_and_applied,
    reviewed,
)
from tests.test_cli_github_review import console_edit
from tests.test_cli_notify import (
    APPLIED,
    DING_SECRET,
    DRIFTED,
    FEISHU_SECRET,
    NOTIFY,
    events,
    robot_env,
    robots,
)

__all__ = ["gitlab_world", "robots"]

PROJECT = "https://gitlab.example.cn/g/bots"


def notify_world(world: GitLabWorld, robots: dict[str, Any]) -> dict[str, str]:
    world.both("app", extra=GIT_STATE + NOTIFY)
    return robot_env(robots)


def test_gitlab_apply_and_drift_notify_with_the_job_and_the_merge_request(
    gitlab_world: GitLabWorld, robots: dict[str, Any]
) -> None:
    world = gitlab_world
    env = notify_world(world, robots)
    iid = reviewed(world, HEAD)
    assert robots["webhook"].accepted == []  # a plan tells nobody
    world.gitlab.merge(iid, MERGE)
    applied = world.apply(**env)
    assert applied.code == 0, applied.log
    assert events(robots) == {
        "dingtalk": [APPLIED],
        "feishu": [],
        "wecom": [APPLIED],
        "webhook": [APPLIED],
    }
    (document,) = robots["webhook"].accepted
    mr_url = f"{PROJECT}/-/merge_requests/{iid}"
    assert document["links"] == {
        "run": f"{PROJECT}/-/jobs/{world.job_id}",
        "pullRequest": {"number": iid, "url": mr_url},
    }
    assert (document["counts"], document["bots"]) == (
        {"applied": 2},
        ["assistant-bot", "helper-bot"],
    )
    text = robots["dingtalk"].accepted[0]["markdown"]["text"]
    assert f"[Merge request !{iid}]({mr_url})" in text
    world.main.remove_bot("helper-bot")
    drift = world.drift(**env)
    assert drift.code == 2, drift.log
    assert events(robots)["feishu"] == [DRIFTED]
    last = robots["webhook"].accepted[-1]
    assert (last["event"], last["bots"]) == ("drift", ["helper-bot"])
    assert last["links"] == {"run": f"{PROJECT}/-/jobs/{world.job_id}", "pullRequest": None}
    written = "\n".join(
        [
            *(job.log for job in world.jobs),
            *(str(job.files) for job in world.jobs),
            str(world.gitlab.issues()),
            *world.notes(iid),
        ]
    )
    for secret in (*(robot.url for robot in robots.values()), DING_SECRET, FEISHU_SECRET):
        assert secret not in written, secret  # webhook URLs and signing secrets: secrets


def test_a_pending_plan_applied_from_the_drift_issue_links_the_pipeline_and_the_issue(
    gitlab_world: GitLabWorld, robots: dict[str, Any]
) -> None:
    world = gitlab_world
    env = notify_world(world, robots)
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    assert world.drift(**env).code == 2
    (issue,) = world.gitlab.issues()
    pipeline = f"{PROJECT}/-/pipelines/99"
    dispatched = world.apply(
        "--pending",
        str(issue["iid"]),
        source="web",
        CI_JOB_URL="",  # the run's link falls back to the pipeline
        CI_PIPELINE_URL=pipeline,
        CI_PROJECT_URL=PROJECT,
        PROVISIONER_LANG="zh-CN",
        **env,
    )
    assert dispatched.code == 0, dispatched.log
    document = robots["webhook"].accepted[-1]
    issue_url = f"{PROJECT}/-/issues/{issue['iid']}"
    assert (document["event"], document["counts"]) == ("apply", {"applied": 1})
    assert document["links"] == {
        "run": pipeline,
        "pullRequest": {"number": issue["iid"], "url": issue_url},
    }
    wecom = robots["wecom"].accepted[-1]["markdown"]["content"]
    assert wecom.startswith("### provisioner：应用 demo 的变更已应用\n")
    assert f"[议题 #{issue['iid']}]({issue_url}) | [查看运行记录]({pipeline})" in wecom


def test_a_merge_without_a_review_is_a_failure_message_linking_the_merge_request(
    gitlab_world: GitLabWorld, robots: dict[str, Any]
) -> None:
    world = gitlab_world
    env = notify_world(world, robots)
    iid = world.gitlab.add_merge_request(HEAD)  # never planned: no trusted plan note
    world.gitlab.merge(iid, MERGE)
    job = world.apply(**env)
    assert job.code == 3, job.log
    assert events(robots)["feishu"] == ["provisioner: app demo failed"]
    (document,) = robots["webhook"].accepted
    assert document["event"] == "failure" and document["error"]
    assert document["links"]["pullRequest"] == {
        "number": iid,
        "url": f"{PROJECT}/-/merge_requests/{iid}",
    }
