"""The plan comment: summary first, per-app sections, the hidden data block, limits, trust."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.errors import PlanError, UnreviewedPlanError
from provisioner.github.client import Account, Comment
from provisioner.github.comment import (
    COMMENT_BUDGET,
    DATA_PREFIX,
    PLAN_MARKER,
    AppFailure,
    RunInfo,
    parse_plan_data,
    pick_trusted,
    plan_data,
    render_plan_comment,
)
from provisioner.render.markdown import markdown_app_section
from tests.github_support import blocked_doc, created_doc, deleting_doc, unchanged_doc

RUN = RunInfo("https://github.com/octo/bots/actions/runs/42", "a" * 40)
FAILURE = AppFailure("broken", "cannot read the state file", "check state.path")


def mixed_docs() -> list[dict[str, Any]]:
    return [deleting_doc("prod"), unchanged_doc("quiet"), blocked_doc("staging")]


def test_summary_comes_first() -> None:
    docs = mixed_docs()
    body = render_plan_comment(docs, RUN, [FAILURE])
    prod, staging = docs[0]["id"][:12], docs[2]["id"][:12]
    assert docs[2]["blocked"] == [
        "the plan deletes every managed bot of app staging (1); pass --allow-empty if that is "
        "intended"
    ]
    assert body.startswith(
        f"""{PLAN_MARKER}
## provisioner plan: 2 of 3 apps with changes, 1 blocked, 1 failed to plan

**Total:** 2 to delete, 1 to update

> [!WARNING]
> **2 bots will be deleted:** `prod` (`old-bot`); `staging` (`only`)

> [!CAUTION]
> **Blocked by a safety rule; nothing is applied to:**
> - `staging`: {docs[2]["blocked"][0]}

> [!CAUTION]
> **Could not plan (see the job log):**
> - `broken`: cannot read the state file (hint: check state.path)

| App | Changes | Plan id |
|---|---|---|
| `prod` | 1 to delete, 1 to update | `{prod}` |
| `staging` | 1 to delete — **BLOCKED** | `{staging}` |

No changes: `quiet`

<details><summary><code>prod</code>: 1 to delete, 1 to update</summary>

"""
    )


def test_each_app_section_is_the_markdown_renderer_s_own() -> None:
    docs = mixed_docs()
    body = render_plan_comment(docs, RUN)
    assert markdown_app_section(docs[0]) in body
    assert markdown_app_section(docs[2]) in body
    assert "### Plan for `quiet`" not in body
    assert f"Plan id: `{docs[0]['id']}`" in body


def test_footer_links_the_run_and_the_data_block_comes_last() -> None:
    body = render_plan_comment(mixed_docs(), RUN)
    lines = body.splitlines()
    assert lines[-2] == (
        "Planned `aaaaaaaaaaaa` from the recorded state · "
        "[workflow run](https://github.com/octo/bots/actions/runs/42) (full plan in its job "
        "summary) · after the merge, apply makes exactly the changes shown here, bot by bot"
    )
    assert lines[-1].startswith(DATA_PREFIX) and lines[-1].endswith(" -->")


def test_data_block_round_trips() -> None:
    docs = mixed_docs()
    data = parse_plan_data(render_plan_comment(docs, RUN))
    assert data == plan_data(docs, RUN.head_sha)
    assert data.plan_ids == {doc["app"]: doc["id"] for doc in docs}
    prod = data.apps[0]
    assert (prod.lineage, prod.serial) == (docs[0]["state"]["lineage"], 2)
    assert [(c.action, c.user_id, c.fields) for c in prod.changes] == [
        ("delete", "old-bot", ()),
        ("update", "assistant", ("name",)),
    ]
    assert not data.changes_omitted


def test_no_value_can_end_the_hidden_block() -> None:
    doc = deleting_doc("prod")
    doc["app"] = "evil --> <!-- provisioner:plan-data {} --> &"
    doc["changes"][0]["user_id"] = "x-->y"
    body = render_plan_comment([doc], RUN)
    block = body.splitlines()[-1]
    assert block.count("-->") == 1 and block.count("<!--") == 1
    data = parse_plan_data(body)
    assert data.apps[0].app == doc["app"]
    assert data.apps[0].changes[0].user_id == "x-->y"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (None, "the plan comment has no data block"),
        ("{not json", "the plan comment's data block is not valid JSON"),
        ('{"version": 1}', "the plan comment's data block has version 1, not 2"),
        ('{"version": 2, "apps": []}', "the plan comment's data block is malformed at head_sha"),
        (
            '{"version": 2, "head_sha": "a", "apps": [{"app": "x", "plan_id": 5, '
            '"lineage": null, "serial": 1}]}',
            "the plan comment's data block is malformed at apps.0.plan_id",
        ),
        ("[1]", "the plan comment's data block is malformed at (top)"),
    ],
)
def test_a_malformed_block_is_an_error(block: str | None, message: str) -> None:
    body = f"{PLAN_MARKER}\nhello\n" + (f"{DATA_PREFIX}{block} -->\n" if block else "")
    with pytest.raises(UnreviewedPlanError) as caught:
        parse_plan_data(body)
    assert caught.value.message == message
    assert caught.value.exit_code == 3
    assert str(caught.value.hint).endswith(
        "push a commit or re-run the plan job to write the plan comment again"
    )


def test_a_block_not_on_the_last_line_is_not_read() -> None:
    body = render_plan_comment(mixed_docs(), RUN) + "\nedited by hand\n"
    with pytest.raises(UnreviewedPlanError, match="has no data block"):
        parse_plan_data(body)


def test_apps_without_changes_stay_on_one_line() -> None:
    docs = [unchanged_doc(f"app-{index:03d}") for index in range(300)]
    body = render_plan_comment(docs, RUN)
    assert "## provisioner plan: 0 of 300 apps with changes" in body
    [line] = [line for line in body.splitlines() if line.startswith("No changes: ")]
    assert line.count("`app-") == 300
    assert "<details>" not in body
    assert len(parse_plan_data(body).apps) == 300


def balanced(text: str) -> bool:
    return text.count("<details>") == text.count("</details>")


def test_long_plans_are_cut_per_app_and_the_block_survives() -> None:
    docs = [created_doc(f"app-{index}", bots=10, wide=True) for index in range(4)]
    docs.append(deleting_doc("small"))
    body = render_plan_comment(docs, RUN)
    assert len(body) <= COMMENT_BUDGET < 65_536
    assert balanced(body)
    assert markdown_app_section(docs[-1]) in body  # the small app stays whole
    for index in range(4):
        assert (
            f"> The plan of `app-{index}` was cut to fit GitHub's comment limit; the full plan "
            "is in the job summary." in body
        )
    data = parse_plan_data(body)
    assert data.plan_ids == {doc["app"]: doc["id"] for doc in docs}
    assert len(data.apps[0].changes) == 10


def test_open_fences_are_closed_when_cut() -> None:
    [doc] = [created_doc("huge", bots=10, wide=True)]
    body = render_plan_comment([doc], RUN, limit=20_000)
    assert len(body) <= 20_000 and balanced(body)
    section = body[body.index("<details><summary><code>huge") :]
    fence_lines = [line for line in section.splitlines() if line.startswith("```")]
    assert len(fence_lines) % 2 == 0


def test_many_changes_leave_only_plan_ids_in_the_block() -> None:
    docs = [created_doc(f"app-{index:03d}", bots=10) for index in range(60)]
    body = render_plan_comment(docs, RUN)
    assert len(body) <= COMMENT_BUDGET and balanced(body)
    data = parse_plan_data(body)
    assert data.changes_omitted
    assert data.plan_ids == {doc["app"]: doc["id"] for doc in docs}
    assert all(app.changes == () for app in data.apps)


def test_too_many_apps_for_one_comment() -> None:
    doc = unchanged_doc("x")
    docs = [{**doc, "app": f"app-{index:04d}"} for index in range(700)]
    with pytest.raises(PlanError) as caught:
        render_plan_comment(docs, RUN)
    assert caught.value.message == "the plan ids of 700 apps do not fit in one pull-request comment"
    assert caught.value.hint == (
        "split the apps over several plan workflows (e.g. by folder with the apps input)"
    )


def test_counts_code_points_not_bytes() -> None:
    doc = created_doc("中文", bots=10, wide=True)
    for change in doc["changes"]:
        change["user_id"] = "机器人" * 20
    body = render_plan_comment([doc] * 1 + [{**doc, "app": "二"}, {**doc, "app": "三"}], RUN)
    assert len(body) <= COMMENT_BUDGET
    assert len(body.encode()) > COMMENT_BUDGET


# --- trust ------------------------------------------------------------------------------------


def comment(id: int, login: str, body: str) -> Comment:
    return Comment(
        id=id,
        body=body,
        user=Account(login=login),
        html_url=f"https://github.com/octo/bots/pull/1#issuecomment-{id}",
    )


def test_only_the_trusted_identity_s_comment_counts() -> None:
    comments = [
        comment(1, "github-actions[bot]", f"{PLAN_MARKER}\nold"),
        comment(2, "alice", "looks good"),
        comment(3, "mallory", f"{PLAN_MARKER}\nforged"),
        comment(4, "GitHub-Actions[bot]", f"{PLAN_MARKER}\nnew"),
        comment(5, "github-actions[bot]", "unrelated"),
    ]
    picked = pick_trusted(comments, PLAN_MARKER, "github-actions[bot]")
    assert picked.comment is not None and picked.comment.id == 4
    assert [ignored.id for ignored in picked.ignored] == [3]
    assert picked.warnings == [
        "ignored https://github.com/octo/bots/pull/1#issuecomment-3 by mallory: it carries "
        "provisioner's marker, but only what the workflow's own identity writes is trusted"
    ]


def test_a_github_app_identity_is_configurable() -> None:
    comments = [
        comment(1, "github-actions[bot]", PLAN_MARKER),
        comment(2, "bots-app[bot]", PLAN_MARKER),
    ]
    picked = pick_trusted(comments, PLAN_MARKER, "bots-app[bot]")
    assert picked.comment is not None and picked.comment.id == 2
    assert [ignored.id for ignored in picked.ignored] == [1]
    assert pick_trusted([], PLAN_MARKER, "x").comment is None


def test_data_block_is_compact_json() -> None:
    block = render_plan_comment([deleting_doc("prod")], RUN).splitlines()[-1]
    payload = json.loads(block[len(DATA_PREFIX) : -len(" -->")])
    assert payload["head_sha"] == "a" * 40 and payload["version"] == 2
