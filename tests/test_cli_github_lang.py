"""The review texts in Chinese end to end (``--lang zh-CN`` / ``PROVISIONER_LANG``): the plan
comment, the outcome, the pending plan, the drift issue and the job summaries, through the
real CLI against the GitHub stand-in, the emulator and real git. What machines read stays
language-neutral: a plan posted in Chinese is applied as one posted in English."""

from __future__ import annotations

from tests.github_fake import REPO_NAME
from tests.github_world import MERGE, SECRETS, World, merged_and_applied, open_pull, plan_data
from tests.test_cli_github_review import (
    console_edit,
    merge,
    outcome,
    pending_comments,
    reviewed,
    set_metadata,
)

ZH = {"PROVISIONER_LANG": "zh-CN"}


def test_a_plan_posted_in_chinese_is_applied_and_the_outcome_is_chinese(world: World) -> None:
    number = open_pull(world)
    planned = world.plan(number, "--lang", "zh-CN")
    assert planned.code == 0, planned.log
    (comment,) = world.comments(number)
    body = comment["body"]
    assert body.startswith(
        "<!-- provisioner:plan -->\n## provisioner 计划：1 个应用中有 1 个有变更\n"
    )
    assert "**合计：**新建 2 个" in body
    assert "| 应用 | 变更 | 计划 ID |" in body
    assert "| 操作 | 机器人 | 字段 | 之前 | 之后 |" in body
    assert "| + 新建 | `assistant-bot` | *（新机器人）* |  |  |" in body
    (app,) = plan_data(body)["apps"]  # the data block is the English one, byte for byte
    assert [change["action"] for change in app["changes"]] == ["create", "create"]
    assert "### 应用 `demo` 的计划：新建 2 个" in planned.summary
    assert "Plan for app demo: 2 to create" in planned.out  # the log stays English
    made = world.github.repo_labels(REPO_NAME)["provisioner:changes"]  # its name stays too
    assert made["description"] == "provisioner：计划会创建、纳管、更新或删除机器人"

    merge(world, number, MERGE)
    applied = world.apply(secrets={**SECRETS, **ZH})
    assert applied.code == 0, applied.log
    assert set(world.state().bots) == {"assistant-bot", "helper-bot"}
    result = outcome(world, number)
    assert "## provisioner 执行结果：1 个应用中有 1 个已完成" in result
    assert "| 应用 | 结果 | 已执行 | 失败 | 未执行 | 原因 |" in result
    assert "| `demo` | ✅ 已应用 | 2 | 0 | 0 |  |" in result
    assert "- `assistant-bot`: ✅ 已新建" in result
    assert "### 执行前生成的计划" in applied.summary


def test_the_drift_issue_in_chinese_is_a_pending_plan_dispatch_applies(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number).code == 0  # posted in English, applied in Chinese: no matter
    merge(world, number, MERGE)
    assert world.apply(secrets={**SECRETS, **ZH}).code == 0
    console_edit(world, "helper-bot", name="By hand")
    drift = world.drift(secrets={**SECRETS, **ZH})
    assert drift.code == 2, drift.log
    (issue,) = world.github.issues_of(REPO_NAME)
    assert issue["title"] == "provisioner：机器人与 git 不一致（漂移）"
    assert issue["body"].startswith("<!-- provisioner:drift -->\n## 1 个应用与 git 不一致\n")
    assert "| 应用 | 漂移的机器人 | 未受管的机器人 | 待应用的变更 | 开始时间 |" in issue["body"]
    assert "### 待应用的计划（恢复为 git 中的版本会做的事）" in issue["body"]
    assert "**漂移**（在 git 之外、于服务器上被修改；已记录 → 线上）：" in issue["body"]

    dispatched = world.apply(
        "--pending", str(issue["number"]), event="workflow_dispatch", secrets={**SECRETS, **ZH}
    )
    assert dispatched.code == 0, dispatched.log
    assert world.state().bots["helper-bot"].spec["name"] == "Helper"
    assert "| `demo` | ✅ 已应用 | 1 | 0 | 0 |  |" in outcome(
        world, issue["number"], "<!-- provisioner:apply-pending -->"
    )
    clean = world.drift(secrets={**SECRETS, **ZH})
    assert clean.code == 0, clean.log
    closed = world.github.issue(REPO_NAME, issue["number"])
    assert closed["state"] == "closed"
    (note,) = [c["body"] for c in world.comments(issue["number"]) if "本次检查" in c["body"]]
    assert note.endswith("未发现漂移：每个应用都与 git 一致。关闭此 issue。")


def test_a_refusal_posts_a_chinese_pending_plan(world: World) -> None:
    number = open_pull(world)
    assert world.plan(number, "--lang", "zh-CN").code == 0
    world.github.push_to_pull(REPO_NAME, number, "5" * 40)  # a push after the review
    merge(world, number, MERGE)
    run = world.apply(secrets={**SECRETS, **ZH})
    assert run.code == 3, run.log
    (pending,) = pending_comments(world, number)
    assert pending.startswith(
        "<!-- provisioner:pending -->\n## provisioner：待应用的计划（1 个应用：`demo`）\n"
    )
    assert f"拉取请求 #{number} 的内容都没有执行：" in pending
    assert f"`provisioner github apply --pending {number}`" in pending
    assert "| `demo` | ⛔ 已拒绝 |" in outcome(world, number)


def test_a_refused_bot_says_why_and_what_to_do_in_chinese(world: World) -> None:
    merged_and_applied(world)
    console_edit(world, "helper-bot", name="By hand")
    set_metadata(world, "helper-bot", "2")
    number = reviewed(world, "6" * 40)
    merge(world, number, "7" * 40)
    run = world.apply(sha="7" * 40, secrets={**SECRETS, **ZH})
    assert run.code == 1, run.log
    assert (
        "- `helper-bot`: ⛔ 已拒绝：它的 `name` 在服务器上发生了漂移，而此变更并不设置这些字段："
        "执行它会撤销一次没有经过审核的修改 — **怎么办：**接受服务器上的版本（在拉取请求中修改"
        "清单使其一致），或者通过待应用的计划恢复它（`github apply --pending`）；在 app.yaml 中"
        "设置 `drift: revert` 后，合并时会自动撤销这类漂移\n"
    ) in outcome(world, number)
    assert (  # the job log stays English, like every CLI message
        "error: app demo: bot helper-bot refused: drifted on the server in `name`, which this"
        " change does not set: applying it would revert a change nobody reviewed" in run.err
    )


def test_an_unknown_language_is_a_usage_error(world: World) -> None:
    number = open_pull(world)
    run = world.plan(number, "--lang", "fr")
    assert run.code == 1
    assert "Invalid value for '--lang': unknown language 'fr'" in run.err
    assert world.comments(number) == []
