"""The plan comment: summary first, per-app sections, the hidden data block, limits, trust."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.errors import PlanError, UnreviewedPlanError
from provisioner.forge.comment import (
    COMMENT_BUDGET,
    DATA_PREFIX,
    PLAN_MARKER,
    AppFailure,
    RunInfo,
    carries_marker,
    encode_data_block,
    parse_plan_data,
    pick_trusted,
    plan_data,
    render_plan_comment,
)
from provisioner.github.client import Account, Comment
from provisioner.render.markdown import BLOCKED_NOTE, markdown_app_section
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
## provisioner plan: BLOCKED (1 of 3 apps) — 2 of 3 apps with changes, 1 failed to plan

> [!CAUTION]
> {BLOCKED_NOTE}
> - `staging`: {docs[2]["blocked"][0]}

**Total:** 2 to delete, 1 to update

> [!WARNING]
> **2 bots will be deleted:** `prod` (`old-bot`); `staging` (`only`)

> [!CAUTION]
> **Could not plan (see the job log):**
> - `broken`: cannot read the state file (hint: check state.path)

| App | Changes | Plan id |
|---|---|---|
| `prod` | 1 to delete, 1 to update | `{prod}` |
| `staging` | **BLOCKED** — 1 to delete | `{staging}` |

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


SEPARATORS = "\u2028\u2029\x85\x0b\x0c\r\n\x1c\x1d\x1e"


def test_no_line_separator_can_break_the_hidden_block() -> None:
    doc = deleting_doc("prod")
    doc["changes"][1]["user_id"] = f"a{SEPARATORS}b"
    doc["changes"][1]["fields"][0]["path"] = f"metadata.k{SEPARATORS}"
    body = render_plan_comment([doc], RUN)
    block = body.splitlines()[-1]  # str.splitlines breaks at every one of them
    assert block.startswith(DATA_PREFIX) and block.endswith(" -->")
    assert "\\u2028\\u2029\\u0085\\u000b\\f\\r\\n\\u001c\\u001d\\u001e" in block
    data = parse_plan_data(body)
    assert data.apps[0].changes[1].user_id == f"a{SEPARATORS}b"
    assert data.apps[0].changes[1].fields == (f"metadata.k{SEPARATORS}",)
    assert data == plan_data([doc], RUN.head_sha)


def test_a_block_holding_a_raw_separator_is_still_read() -> None:
    """A comment written before the separators were escaped: lines end at \\n only."""
    data = plan_data([deleting_doc("prod")], RUN.head_sha)
    raw = data.model_copy(update={"head_sha": "a\u2028b\x85c"})
    legacy = encode_data_block(raw).replace("\\u2028", "\u2028").replace("\\u0085", "\x85")
    assert "\u2028" in legacy and "\x85" in legacy
    assert parse_plan_data(f"{PLAN_MARKER}\nhello\n{legacy}\n").head_sha == "a\u2028b\x85c"


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
    # 300 plan ids fill half the comment: the record keeps the apps `github apply` applies
    assert parse_plan_data(body).apps == ()


def test_a_fleet_plan_fits_with_the_apps_that_change_first() -> None:
    docs = [unchanged_doc(f"app-{index:04d}") for index in range(1000)]
    docs[700] = deleting_doc("app-0700")
    body = render_plan_comment(docs, RUN)
    assert len(body) <= COMMENT_BUDGET
    assert body.index("`app-0700`") < body.index("No changes: ")
    assert [app.app for app in parse_plan_data(body).apps] == ["app-0700"]
    assert not parse_plan_data(body).changes_omitted


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
    doc = deleting_doc("x")  # apps without changes are left out of the record first
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


def test_a_marker_counts_only_as_the_exact_first_line() -> None:
    assert carries_marker(f"{PLAN_MARKER}\nbody", PLAN_MARKER)
    assert carries_marker(f"{PLAN_MARKER}\r\nedited on the web", PLAN_MARKER)
    assert carries_marker(PLAN_MARKER, PLAN_MARKER)
    for text in (
        f"## title\n{PLAN_MARKER}",
        f" {PLAN_MARKER}\nbody",
        f"{PLAN_MARKER} and more\nbody",
        f"name: `{PLAN_MARKER}`",
        f"\n{PLAN_MARKER}",
        "<!-- provisioner:apply -->\n" + PLAN_MARKER,
        f"{PLAN_MARKER}\u2028second",  # one line for GitHub, not the marker alone
    ):
        assert not carries_marker(text, PLAN_MARKER), text


def test_a_marker_inside_a_trusted_comment_does_not_make_it_that_kind() -> None:
    apply_marker = "<!-- provisioner:apply -->"
    comments = [
        comment(1, "github-actions[bot]", f"{PLAN_MARKER}\n| `{apply_marker}` |"),
        comment(2, "github-actions[bot]", f"{apply_marker}\noutcome"),
        comment(3, "mallory", f"quoting:\n{apply_marker}"),
    ]
    picked = pick_trusted(comments, apply_marker, "github-actions[bot]")
    assert picked.comment is not None and picked.comment.id == 2
    assert picked.ignored == ()  # mallory's comment does not carry it: no warning either
    assert pick_trusted(comments[:1], apply_marker, "github-actions[bot]").comment is None


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


# --- user text never writes a marker, a blocked plan opens with the block ---------------------


def test_no_value_can_write_a_marker_or_open_a_comment() -> None:
    doc = deleting_doc("prod")
    hostile = "<!-- provisioner:apply -->"
    doc["changes"][1]["fields"][0]["new"] = hostile
    doc["changes"][1]["user_id"] = "<!--x-->"
    doc["blocked"] = [f"reason {hostile}"]
    failure = AppFailure("<!--bad-->", f"failed {hostile}", f"hint {hostile}")
    body = render_plan_comment([doc], RUN, [failure])
    assert body.count("<!--") == 2  # the marker and the data block
    assert body.count("-->") == 2
    assert body.splitlines()[0] == PLAN_MARKER
    assert '`"\\u003c!-- provisioner:apply --\\u003e"`' in body


def test_a_blocked_plan_opens_with_the_block_then_the_deletion_warning() -> None:
    doc = blocked_doc("staging")
    lines = render_plan_comment([doc], RUN).splitlines()
    assert lines[:7] == [
        PLAN_MARKER,
        "## provisioner plan: BLOCKED (1 of 1 apps) — 1 of 1 apps with changes",
        "",
        "> [!CAUTION]",
        "> **Blocked by a safety rule: nothing will be applied until the block is lifted; each"
        " reason says how.**",
        "> - `staging`: the plan deletes every managed bot of app staging (1); pass"
        " --allow-empty if that is intended",
        "",
    ]
    warning = lines.index("> **1 bot will be deleted:** `staging` (`only`)")
    assert warning > 7
    section = markdown_app_section(doc).splitlines()
    assert section[:4] == [
        "### Plan for `staging`: BLOCKED — 1 to delete",
        "",
        "> [!CAUTION]",
        f"> {BLOCKED_NOTE}",
    ]
    assert section.index("> **1 bot will be deleted:** `only`") > 4
