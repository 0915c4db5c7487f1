"""简体中文的审核文本（``lang: zh-CN``）：键与占位符与 :mod:`.en` 一一对应。

用词取融云控制台与文档自己的说法，写给不一定是工程师的审核人：机器人、应用、集成、变更、
漂移、纳管、未受管、待应用的计划、拉取请求、机密。标记、隐藏数据块、字段路径和名称不翻译。
各代码托管平台自己的用词（:data:`TERMS`）取其中文界面的说法：GitLab 的合并请求、评论、议题、
流水线、作业、制品；GitHub 的 issue 沿用英文。
"""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, str]] = {
    # --- 通用片段 ---------------------------------------------------------------------------
    "list.separator": "、",
    "count.replace": "替换 {n} 个",
    "count.delete": "删除 {n} 个",
    "count.create": "新建 {n} 个",
    "count.adopt": "纳管 {n} 个",
    "count.update": "更新 {n} 个",
    "count.drift": "漂移 {n} 个",
    "count.unmanaged": "未受管 {n} 个",
    "count.none": "无变更",
    "count.with_extra": "{changes}；{extra}",
    "action.create": "新建",
    "action.update": "更新",
    "action.delete": "删除",
    "action.adopt": "纳管",
    "action.replace": "替换",
    "plan.replacement": (
        "userId 改变，机器人的身份也随之改变：删除 {old} 并新建 {new}（用户会看到一个新的"
        "机器人；融云为 {old} 保存的内容不会迁移过去）"
    ),
    "plan.no_state": "尚无已记录的状态",
    "plan.state": "状态序号 {serial}，lineage {lineage}",
    "plan.unchecked": (
        "本次运行未检查（环境中没有值）：{names}；状态中记录了相同引用的地方视为未改变"
    ),
    # --- Markdown 格式的计划 ------------------------------------------------------------------
    "md.blocked_note": (
        "**被安全规则阻止：解除阻止之前不会应用任何变更；每条原因都说明了解除的方法。**"
    ),
    "md.truncated": (
        "\n> [!NOTE]\n> 计划太长，一条评论放不下，这里只显示了一部分。完整内容请运行"
        " `provisioner plan --format json`，或查看保存的 `plan --out` 文件。\n"
    ),
    "md.overview": "## {count} 个应用的计划：{blocked}",
    "md.no_changes": "无变更：{apps}",
    "md.blocked_title": "已阻止（{count} 个应用中的 {blocked} 个）— ",
    "md.blocked": "已阻止 — ",
    "md.blocked_word": "已阻止",
    "md.app_heading": "### 应用 {app} 的计划：{blocked}{summary}",
    "md.plan_id": "计划 ID：`{id}`（{state}）",
    "md.unmanaged": "**未受管**（在服务器上，但从未记录；不会改动）：{names}",
    "md.will_be_deleted.one": "**将删除 {count} 个机器人：**{names}",
    "md.will_be_deleted.other": "**将删除 {count} 个机器人：**{names}",
    "md.replaced": "**替换** {pair}：{warning}",
    "md.drift": "**漂移**（在 git 之外、于服务器上被修改；已记录 → 线上）：",
    "md.missing": "服务器上已不存在",
    "md.full_plan": "完整计划（命令行输出，英文）",
    "md.table_header": "| 操作 | 机器人 | 字段 | 之前 | 之后 |",
    "md.new_bot": "*（新机器人）*",
    "md.whole_bot": "*（整个机器人）*",
    "md.protected": "受保护",
    # --- 计划评论 -----------------------------------------------------------------------------
    "comment.title": "## provisioner 计划：{blocked}{parts}",
    "comment.with_changes": "{count} 个应用中有 {shown} 个有变更",
    "comment.none_planned": "没有计划任何应用",
    "comment.failed": "{count} 个无法计划",
    "comment.total": "**合计：**{counts}",
    "comment.could_not_plan": "**无法计划（详见作业日志）：**",
    "comment.table_header": "| 应用 | 变更 | 计划 ID |",
    "comment.blocked": "**已阻止** — ",
    "comment.stub": "- {app}：已截断，见{ci_summary}\n",
    "comment.cut_summary": (
        "\n> [!NOTE]\n> 为符合{forge}的{comment}长度限制，此摘要已截断；完整计划见{ci_summary}。\n"
    ),
    "comment.cut_app": (
        "\n> [!NOTE]\n> 为符合{forge}的{comment}长度限制，{app} 的计划已截断；"
        "完整计划见{ci_summary}。\n"
    ),
    "comment.footer": (
        "\n---\n基于已记录的状态为 `{sha}` 生成的计划 · [{ci_run}]({url})"
        "（完整计划见其{ci_summary}）· 合并后，将逐个机器人执行这里显示的变更，不多也不少\n"
    ),
    # --- 执行结果 -----------------------------------------------------------------------------
    "outcome.refused": "⛔ 已拒绝：{reason}",
    "outcome.refused_hint": "⛔ 已拒绝：{reason} — **怎么办：**{hint}",
    "outcome.left": "➖ 未改动：{reason}",
    "outcome.left_hint": "➖ 未改动：{reason} — {hint}",
    "outcome.failed": "❌ 失败：{error}",
    "outcome.not_attempted": "⏸ 未执行（执行在此之前已停止）：请重新运行",
    "outcome.record": "服务器上已与声明一致（已记录，未调用接口）",
    "outcome.forget": "服务器上已不存在（已从状态中移除，未调用接口）",
    "outcome.done": "无需操作（已与声明一致）",
    "outcome.made.create": "已新建",
    "outcome.made.update": "已更新",
    "outcome.made.delete": "已删除",
    "outcome.made.adopt": "已纳管（服务器上已与声明一致；未调用接口）",
    "outcome.app_refused": "⛔ 已拒绝",
    "outcome.app_partly": "⚠️ 部分完成",
    "outcome.app_failed": "❌ 失败",
    "outcome.app_applied": "✅ 已应用",
    "outcome.app_nothing": "✅ 无需操作",
    "outcome.bots_refused.one": "{result}（{count} 个机器人被拒绝）",
    "outcome.bots_refused.other": "{result}（{count} 个机器人被拒绝）",
    "outcome.shard": "（分片 {shard}/{shards}）",
    "outcome.title": "## provisioner 执行结果{part}：{count} 个应用中有 {done} 个已完成",
    "outcome.attention": "，{count} 个需要处理",
    "outcome.nothing": "此次合并没有改动任何机器人：无需执行。",
    "outcome.table_header": "| 应用 | 结果 | 已执行 | 失败 | 未执行 | 原因 |",
    "outcome.pending": (
        "**剩余部分**在待应用的计划 {url} 中：由审核人通过{dispatch}执行"
        "（`{command} apply --pending N`，在{gate}中）。"
    ),
    "outcome.footer": "\n---\n合并提交 `{sha}` · [{ci_run}]({url}) · 状态只记录实际执行了的变更\n",
    "outcome.cut": (
        "\n> [!NOTE]\n> 为符合{forge}的{comment}长度限制，此{comment}已截断；"
        "完整结果见{ci_summary}。\n"
    ),
    "apply.plans_heading": "\n### 执行前生成的计划\n\n",
    # --- 每个机器人的原因与建议 ---------------------------------------------------------------
    "bot.made.rotated": "{made}；另外，有机密在 git 之外被修改：{names}",
    "bot.made.reverted_deleted": (
        "{made}；已恢复：它曾在 git 之外被从服务器上删除（应用设置了 drift: revert）"
    ),
    "bot.made.reverted_drifted": (
        "{made}；已恢复：它的 {fields} 曾在服务器上发生漂移，而此变更并不设置这些字段"
        "（应用设置了 drift: revert）"
    ),
    "bot.changed.gone": "它的清单已被移除（审核之后又被后续推送或其他变更修改过）",
    "bot.changed.stale": "它的清单已不是审核时的版本（审核之后又被后续推送或其他变更修改过）",
    "bot.changed.again": (
        "审核时它将被删除，但现在它的清单又出现了（审核之后又被后续推送或其他变更修改过）"
    ),
    "bot.taken": (
        "服务器上已有一个使用此 userId 的机器人，但配置不同（{fields} 不一致）："
        "这是审核时不知道的机器人"
    ),
    "bot.deleted_outside": (
        "它在 git 之外被从服务器上删除：重新新建它会撤销一次没有经过审核的删除"
    ),
    "bot.drifted_outside": (
        "它的 {fields} 在服务器上发生了漂移，而此变更并不设置这些字段：执行它会撤销一次没有"
        "经过审核的修改"
    ),
    "bot.protected": "它受保护（状态中为 protect: true）",
    "bot.rotated": (
        "有机密在 git 之外被修改：{names}（引用没变，值变了）；此次合并没有改动这个机器人"
    ),
    "bot.changed_alone": "它在 git 之外于服务器上被修改；此次合并没有改动它",
    "bot.deleted_alone": "它在 git 之外被从服务器上删除；此次合并没有改动它",
    "bot.unapplied": "它有一项尚未应用的变更（{action}），但不在此次合并的审核范围内",
    "bot.hint.review_again": (
        "请重新审核：推送到一个{review}（或新建一个），让它的计划显示当前的清单，然后合并"
    ),
    "bot.hint.adopt": (
        "如要纳管它，请按服务器上的样子声明它（`provisioner export` 可以导出它的清单）；"
        "或者给你的机器人换一个 userId"
    ),
    "bot.hint.drift": (
        "接受服务器上的版本（在{review}中修改清单使其一致），或者通过待应用的计划恢复它"
        "（`{command} apply --pending`）；在 app.yaml 中设置 `drift: revert` 后，合并时会自动"
        "撤销这类漂移"
    ),
    "bot.hint.protected": "请先在另一个{review}中设置 protect: false 并合并，再删除这个机器人",
    "bot.hint.rotated": (
        "请通过漂移{issue}中待应用的计划来应用这次机密变更（`{command} apply --pending"
        " ISSUE`：{dispatch}，在{gate}中）"
    ),
    "bot.hint.drift_issue": (
        "见漂移{issue}：接受它（在{review}中修改清单），或者恢复它（`{command} apply --pending"
        " ISSUE`）"
    ),
    "bot.hint.unapplied": (
        "它属于显示了这项变更的那次审核：请应用那次审核的待应用的计划（`{command} apply"
        " --pending N`），或者在{review}中重新审核"
    ),
    # --- 待应用的计划 -------------------------------------------------------------------------
    "pending.title.one": "## provisioner：待应用的计划（{count} 个应用：{names}）",
    "pending.title.other": "## provisioner：待应用的计划（{count} 个应用：{names}）",
    "pending.intro.one": (
        "{why}下面是现在应用它会做的事：执行之后基于线上的机器人重新生成的计划。在审核人批准之前，"
        "这里的任何内容都不会被应用："
    ),
    "pending.intro.other": (
        "{why}下面是现在应用它们会做的事：执行之后基于线上的机器人重新生成的计划。在审核人批准"
        "之前，这里的任何内容都不会被应用："
    ),
    "pending.how": (
        "- **应用它：**运行{dispatch}，编号填 `{number}`（`provisioner {command} apply"
        " --pending {number}`）；{approval}就是对这些计划本身的审核（届时计划已经变化的应用"
        "不会被应用，而是发布一份新的待应用的计划）；\n- **或者修改 git：**把符合预期的清单推送到"
        "一个{review}；合并后按审核的内容执行。"
    ),
    "pending.footer": "\n---\n为 `{sha}` 生成 · [{ci_run}]({url})\n",
    "pending.why_refused": (
        "{review} {ref}{number} 的 `{command} apply` 拒绝了其中一部分变更（执行结果{comment}说明了"
        "是哪些以及原因）。"
    ),
    "pending.why_unreviewed": "{review} {ref}{number} 的内容都没有执行：{error}。",
    "pending.why_changed": "执行 {ref}{number} 上的待应用的计划时，部分应用已与它不一致。",
    # --- 漂移 issue ---------------------------------------------------------------------------
    "drift.issue_title": "provisioner：机器人与 git 不一致（漂移）",
    "drift.differ.one": "## {count} 个应用与 git 不一致",
    "drift.differ.other": "## {count} 个应用与 git 不一致",
    "drift.unchecked": "## 未发现漂移，但有 {count} 个应用无法检查",
    "drift.clean": "## 没有漂移：每个应用都与 git 一致",
    "drift.table_header": "| 应用 | 漂移的机器人 | 未受管的机器人 | 待应用的变更 | 开始时间 |",
    "drift.more": "{names} 及另外 {more} 个",
    "drift.advice": (
        "每个不一致的应用都有**两种处理方式**，都要经过审核：\n\n- **接受服务器上的版本：**在"
        "{review}中修改清单，使其与服务器一致；合并后记录服务器上的内容（已经一致的不调用接口）；\n"
        "- **恢复为 git 中的版本：**审核人用本{issue}的编号运行{dispatch}（`provisioner"
        " {command} apply --pending <编号>`，在{gate}中），它严格按本次检查生成的样子应用下面"
        "的待应用的计划（撤销漂移，以及 git 中尚未应用的变更）；此后计划有变化的应用不会被应用，"
        "而是发布一份新的待应用的计划。\n\n每次检查都会重写此{issue}，全部一致时自动关闭。"
    ),
    "drift.could_not_check": "**无法检查：**",
    "drift.pending_heading": "\n### 待应用的计划（恢复为 git 中的版本会做的事）\n\n",
    "drift.cut": (
        "\n> [!NOTE]\n> 为符合{forge}的{issue}长度限制，此表已截断；完整的漂移报告见本次运行的"
        "{ci_summary}。\n"
    ),
    "drift.footer": "\n---\n检查于 {at} · [{ci_run}]({url})\n",
    "drift.closing": "[本次检查]({url})未发现漂移：每个应用都与 git 一致。关闭此 issue。",
    "drift.closing.gitlab": "[本次检查]({url})未发现漂移：每个应用都与 git 一致。关闭此议题。",
    # --- 最近一次漂移检查看到的情况 -----------------------------------------------------------
    "seen.title": "最近一次漂移检查看到的情况",
    "seen.line": "- {app}：{seen}（{by}）：{merge}",
    "seen.by": "见于{run}{notes}",
    "seen.run_of": " {when} 的漂移检查",
    "seen.age.one": "，{count} 天前",
    "seen.age.other": "，{count} 天前",
    "seen.moved": "；此后状态已变化",
    "seen.more": "{fields} 及另外 {more} 个",
    "seen.no_record": "尚无漂移检查的记录",
    "seen.exists": "{bot} 已存在于服务器上",
    "seen.adopts": "如果服务器上仍与此配置完全一致，此次合并将纳管它，否则拒绝",
    "seen.not_on_server": "{bot} 不在服务器上",
    "seen.creates": "此次合并将新建它",
    "seen.drifted": "{bot} 的 {fields} 发生了漂移",
    "seen.deletes_as_reviewed": "此次合并将按审核的内容删除它",
    "seen.matches": "{bot} 与已记录的状态一致",
    "seen.merge_deletes": "此次合并将删除它",
    "seen.merge_updates": "此次合并将更新它",
    "seen.gone": "{bot} 已不在服务器上",
    "seen.forgets": "此次合并将把它从状态中移除",
    "seen.deleted": "{bot} 在 git 之外被从服务器上删除",
    "seen.creates_again": "此次合并将重新新建它（应用设置了 {revert}）",
    "seen.will_refuse_missing": "此次合并将拒绝它（如果应用设置了 {revert}，则重新新建）",
    "seen.sets": "此拉取请求设置了 {fields}，因此此次合并会使它与声明一致",
    "seen.reverts": "此次合并将恢复 {fields}（应用设置了 {revert}）",
    "seen.will_refuse": (
        "除非此拉取请求设置 {fields}（或应用设置了 {revert}），否则此次合并将拒绝它"
    ),
    "seen.alone_drift": "此次合并不会改动它；见漂移{issue}",
    "seen.unmanaged": "{bot} 在服务器上，但未受管",
    "seen.alone": "此次合并不会改动它",
    # --- 新的机密与作业摘要 -------------------------------------------------------------------
    "secrets.new": (
        "**新的机密：**此拉取请求引用了已记录的状态中还没有的变量；合并之前请把它们加入执行作业"
        "的机密（{bundle}；`provisioner github secrets` 会列出每个应用需要的变量）："
    ),
    "secrets.new.gitlab": (
        "**新的机密：**此合并请求引用了已记录的状态中还没有的变量；合并之前请把它们添加为项目的"
        " CI/CD 变量（设为屏蔽（masked）并受保护（protected），环境范围限定在执行作业和漂移检查"
        "作业的环境）："
    ),
    "summary.cut": (
        "\n> [!NOTE]\n> 为符合 GitHub 作业摘要每一步 1 MiB 的限制，此摘要已截断。完整内容请运行"
        " `provisioner plan --format json`。\n"
    ),
    "summary.no_apps": "没有要计划的应用。\n",
    "summary.no_drift": "没有漂移：每个应用都与 git 一致。\n",
    "summary.validation": "\n### 清单校验\n\n",
    # --- 拉取请求标签（仓库中标签的描述） ---------------------------------------------------
    "label.no-changes": "provisioner：计划不改变任何机器人",
    "label.changes": "provisioner：计划会创建、纳管、更新或删除机器人",
    "label.delete": "provisioner：计划会删除机器人",
    "label.blocked": "provisioner：计划被安全规则阻止",
}

TERMS: Final[dict[str, dict[str, str]]] = {
    "github": {
        "ci_run": "工作流运行",
        "ci_summary": "作业摘要",
        "comment": "评论",
        "issue": "issue",
        "review": "拉取请求",
        "dispatch": "手动触发的工作流",
        "gate": "受保护的环境",
        "approval": "受保护环境的审批",
    },
    "gitlab": {
        "ci_run": "流水线作业",
        "ci_summary": "plan.md 制品",
        "comment": "评论",
        "issue": "议题",
        "review": "合并请求",
        "dispatch": "手动作业 `apply-pending`（变量 `PROVISIONER_PENDING`）",
        "gate": "受保护的手动作业",
        "approval": "运行该手动作业（Premium 版上为受保护环境的审批）",
    },
}
