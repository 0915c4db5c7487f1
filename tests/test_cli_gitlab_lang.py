"""The review texts in Chinese on GitLab end to end (``--lang zh-CN`` / ``PROVISIONER_LANG``),
as on GitHub (tests/test_cli_github_lang.py): the plan note, plan.md, the outcome, the pending
plan and the drift issue, in GitLab's own words (合并请求, 评论, 议题, 流水线作业, plan.md
制品), through the real CLI against the GitLab stand-in, the emulator and real git. What
machines read stays language-neutral: a plan posted in Chinese is applied as one in English."""

from __future__ import annotations

from tests.apply_support import write_calls
from tests.gitlab_world import (
    APPLY_MARKER,
    HEAD,
    MERGE,
    PENDING_MARKER,
    PLAN_MARKER,
    GitLabWorld,
    gitlab_world,
    merged_and_applied,
    plan_data,
    reviewed,
)
from tests.test_cli_github_review import console_edit, set_metadata

__all__ = ["gitlab_world"]

ZH = {"PROVISIONER_LANG": "zh-CN"}
JOBS = "(https://gitlab.example.cn/g/bots/-/jobs/"


def test_a_plan_noted_in_chinese_is_applied_and_the_outcome_is_chinese(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD)
    planned = world.plan(iid, "--lang", "zh-CN")
    assert planned.code == 0, planned.log
    (note,) = world.notes(iid)
    assert note.startswith(f"{PLAN_MARKER}\n## provisioner 计划：1 个应用中有 1 个有变更\n")
    assert "**合计：**新建 2 个" in note
    assert "| + 新建 | `assistant-bot` | *（新机器人）* |  |  |" in note
    assert f"· [流水线作业]{JOBS}" in note
    assert "（完整计划见其 plan.md 制品）· 合并后" in note
    (app,) = plan_data(note)["apps"]  # the data block is the English one
    assert [change["action"] for change in app["changes"]] == ["create", "create"]
    assert "### 应用 `demo` 的计划：新建 2 个" in planned.files["plan.md"]
    assert "Plan for app demo: 2 to create" in planned.out  # the log stays English

    world.gitlab.merge(iid, MERGE)
    applied = world.apply(**ZH)
    assert applied.code == 0, applied.log
    assert set(world.state().bots) == {"assistant-bot", "helper-bot"}
    (outcome,) = world.notes(iid, APPLY_MARKER)
    assert "## provisioner 执行结果：1 个应用中有 1 个已完成" in outcome
    assert "| `demo` | ✅ 已应用 | 2 | 0 | 0 |  |" in outcome
    assert "- `assistant-bot`: ✅ 已新建" in outcome
    assert f"合并提交 `{MERGE[:12]}` · [流水线作业]{JOBS}" in outcome
    assert "### 执行前生成的计划" in applied.files["plan.md"]


def test_a_refusal_posts_a_chinese_pending_plan_the_pending_job_applies(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2", where="both")
    iid = reviewed(world, "6" * 40)
    world.gitlab.merge(iid, "7" * 40)
    job = world.apply(sha="7" * 40, **ZH)
    assert job.code == 1, job.log
    (pending,) = world.notes(iid, PENDING_MARKER)
    assert pending.startswith(
        f"{PENDING_MARKER}\n## provisioner：待应用的计划（1 个应用：`demo`）\n\n"
        f"合并请求 !{iid} 的 `gitlab apply` 拒绝了其中一部分变更（执行结果评论说明了是哪些"
        "以及原因）。下面是"
    )
    assert (
        "- **应用它：**运行手动作业 `apply-pending`（变量 `PROVISIONER_PENDING`），编号填"
        f" `{iid}`（`provisioner gitlab apply --pending {iid}`）；运行该手动作业（Premium 版上为"
        "受保护环境的审批）就是对这些计划本身的审核" in pending
    )
    assert "把符合预期的清单推送到一个合并请求；" in pending
    (outcome,) = world.notes(iid, APPLY_MARKER)
    assert "⛔ 已拒绝：" in outcome
    assert "**剩余部分**在待应用的计划 (note " in outcome
    assert (
        f" on !{iid}) 中：由审核人通过手动作业 `apply-pending`（变量 `PROVISIONER_PENDING`）执行"
        "（`gitlab apply --pending N`，在受保护的手动作业中）。" in outcome
    )
    before = write_calls(world.server)
    dispatched = world.apply("--pending", str(iid), sha="7" * 40, source="web", **ZH)
    assert dispatched.code == 0, dispatched.log
    assert write_calls(world.server) == before + 1
    assert world.state().bots["helper-bot"].spec["metadata"] == {"version": "2"}
    (done,) = world.notes(iid, "<!-- provisioner:apply-pending -->")
    assert "| `demo` | ✅ 已应用 | 1 | 0 | 0 |  |" in done


def test_the_drift_issue_in_chinese_names_gitlab_s_issue_and_job(
    gitlab_world: GitLabWorld,
) -> None:
    world = gitlab_world
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    assert world.drift(**ZH).code == 2
    (issue,) = world.gitlab.issues()
    assert issue["title"] == "provisioner：机器人与 git 不一致（漂移）"
    text = issue["description"]
    assert text.startswith("<!-- provisioner:drift -->\n## 1 个应用与 git 不一致\n")
    assert "**接受服务器上的版本：**在合并请求中修改清单" in text
    assert (
        "审核人用本议题的编号运行手动作业 `apply-pending`（变量 `PROVISIONER_PENDING`）"
        "（`provisioner gitlab apply --pending <编号>`，在受保护的手动作业中）" in text
    )
    assert "每次检查都会重写此议题，全部一致时自动关闭。" in text
    assert f"· [流水线作业]{JOBS}" in text
    job = world.apply("--pending", str(issue["iid"]), source="web", **ZH)
    assert job.code == 0, job.log
    assert world.state().bots["helper-bot"].spec["name"] == "Helper"
    clean = world.drift(**ZH)
    assert clean.code == 0, clean.log
    (closed,) = world.gitlab.issues()
    assert closed["state"] == "closed"
    (note,) = world.notes(closed["iid"], "[本次检查]", thread="issues")
    assert note.endswith("未发现漂移：每个应用都与 git 一致。关闭此议题。")
    assert clean.files["plan.md"].startswith("<!-- provisioner:drift -->\n## 没有漂移：每个应用")


def test_an_unknown_language_is_a_usage_error(gitlab_world: GitLabWorld) -> None:
    world = gitlab_world
    iid = world.gitlab.add_merge_request(HEAD)
    job = world.plan(iid, PROVISIONER_LANG="fr")
    assert job.code == 1
    assert "Invalid value for '--lang': unknown language 'fr'" in job.err
    assert world.notes(iid) == []
