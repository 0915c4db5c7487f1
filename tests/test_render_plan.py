"""Plan renderers: exact text and markdown snapshots, json shape, truncation, no secrets.

The snapshots live in ``tests/fixtures/render_plan/``. After an intended change of the
output, regenerate them with ``UPDATE_SNAPSHOTS=1 pytest tests/test_render_plan.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provisioner.plan import Plan, make_plan
from provisioner.plan.canonical import api_payload
from provisioner.render.markdown import (
    BLOCKED_NOTE,
    MARKDOWN_MARKER,
    cut_markdown,
    markdown_app_section,
    render_markdown,
)
from provisioner.render.plan import render_json, render_text
from provisioner.state import RecordedApp
from tests.test_plan import ENV, make_app, make_bot, record, renamed

SNAPSHOTS = Path(__file__).parent / "fixtures" / "render_plan"
SECRETS = {"DIFY_KEY": "app-SECRET-one", "OTHER_KEY": "app-SECRET-two"}
ROTATED = {"DIFY_KEY": "app-SECRET-rotated", "OTHER_KEY": "app-SECRET-two"}


def representative_plan() -> Plan:
    """One of everything: delete (one protected), create, adopt, update with a rotated
    secret, drift (changed and missing), an unmanaged bot; blocked by the protect rule."""
    fixed = RecordedApp(
        app="demo",
        lineage="0f0f0f0f-0000-4000-8000-000000000001",
        serial=0,
        salt="fixed-salt",
        bots={},
    )
    recorded_app = make_app(
        make_bot("assistant"), make_bot("legacy", protect=True), make_bot("zz-old")
    )
    state = record(recorded_app, SECRETS, fixed)
    desired = make_app(
        make_bot(
            "assistant",
            name="消息助手",
            metadata={"version": "2", "owner": "team"},
            integrations=[
                {"type": "webhook", "callbackUrl": "https://hooks.example.com/rc"},
                {
                    "type": "dify_chat",
                    "callbackUrl": "https://api.dify.ai/v1",
                    "stream": False,
                    "auth": {"apiKey": "${DIFY_KEY}"},
                },
            ],
        ),
        make_bot(
            "helper",
            metadata={},
            integrations=[
                {
                    "type": "dify_chatflow",
                    "callbackUrl": "https://api.dify.ai/v1",
                    "auth": {"apiKey": "${OTHER_KEY}"},
                }
            ],
        ),
        make_bot("found"),
    )
    live = [
        api_payload(make_bot("assistant", type="Edited"), SECRETS),
        api_payload(make_bot("legacy"), SECRETS),
        api_payload(make_bot("found", name="Found by hand"), ROTATED),
        api_payload(make_bot("manual"), SECRETS),
    ]
    return make_plan(desired, state, ROTATED, live)


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def test_text_snapshot() -> None:
    assert_snapshot("representative.txt", render_text([representative_plan().document]))


def test_markdown_snapshot() -> None:
    assert_snapshot("representative.md", render_markdown([representative_plan().document]))


def test_text_in_colour_wraps_symbols_only() -> None:
    text = render_text([representative_plan().document], color=True)
    assert "  \x1b[31m-\x1b[0m delete zz-old" in text
    assert "  \x1b[32m+\x1b[0m create helper (bots/demo/helper.yaml)" in text
    plain = text.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[33m", "")
    for code in ("\x1b[36m", "\x1b[35m", "\x1b[1;31m", "\x1b[0m"):
        plain = plain.replace(code, "")
    assert plain == render_text([representative_plan().document])


def test_no_changes_text() -> None:
    app = make_app(make_bot("a"))
    fixed = RecordedApp(app="demo", lineage="l-1", serial=0, salt="s", bots={})
    plan = make_plan(app, record(app, SECRETS, fixed), SECRETS)
    assert render_text([plan.document]) == (
        f"Plan for app demo: no changes\nPlan id: {plan.id} (state serial 1, lineage l-1)\n"
    )


def test_json_is_the_documented_plans_document() -> None:
    plan = representative_plan()
    document = json.loads(render_json([plan.document]))
    assert document["format_version"] == 1
    (entry,) = document["plans"]
    assert entry["id"] == plan.id
    assert set(entry) == {
        "id",
        "format_version",
        "app",
        "state",
        "counts",
        "has_changes",
        "blocked",
        "changes",
        "drift",
        "unmanaged",
        "unchecked",
    }
    assert [change["action"] for change in entry["changes"]] == [
        "delete",
        "delete",
        "adopt",
        "create",
        "update",
    ]
    update = entry["changes"][-1]
    assert set(update) == {
        "action",
        "user_id",
        "source",
        "protect",
        "before",
        "after",
        "fields",
        "replacement",
        "digest",
    }
    assert update["fields"][0] == {
        "path": "integrations[dify_chat].auth.apiKey",
        "old": plan.changes[-1].fields[0].old,
        "new": plan.changes[-1].fields[0].new,
        "sensitive": True,
    }


@pytest.mark.parametrize("renderer", ["text", "json", "markdown"])
def test_no_secret_in_any_renderer(renderer: str) -> None:
    document = representative_plan().document
    output = {
        "text": lambda: render_text([document], color=True),
        "json": lambda: render_json([document]),
        "markdown": lambda: render_markdown([document]),
    }[renderer]()
    for value in (*SECRETS.values(), *ROTATED.values()):
        assert value not in output
    assert "SECRET" not in output


def test_markdown_is_truncated_under_the_limit_with_a_note() -> None:
    bots = [make_bot(f"bot-{index:02d}", name="n" * 120) for index in range(10)]
    plans = []
    for number in range(40):
        app = make_app(*bots, name=f"app-{number:02d}")
        plans.append(make_plan(app, RecordedApp.fresh(app.name), SECRETS).document)
    full = render_markdown(plans, limit=10**9)
    assert len(full) > 60_000
    short = render_markdown(plans)
    assert len(short) <= 60_000
    assert short.startswith(MARKDOWN_MARKER)
    assert short.rstrip().endswith(
        "> The plan was too long for one comment and is truncated here. Run"
        " `provisioner plan --format json` or see the saved `plan --out` file for all of it."
    )
    assert "<details>" not in short  # details go first, and no block is left open


def test_markdown_drops_details_first_when_that_is_enough() -> None:
    document = representative_plan().document
    full = render_markdown([document])
    compact = render_markdown([document], limit=len(full) - 1)
    assert "<details>" not in compact and "| ~ update | `assistant` |" in compact
    assert "truncated" in compact


def test_markdown_for_several_apps_opens_with_their_totals() -> None:
    billing = make_app(make_bot("invoice-bot"), make_bot("refund-bot"), name="billing")
    quiet = make_app(make_bot("faq-bot"), name="quiet")
    docs = [
        representative_plan().document,
        make_plan(billing, RecordedApp.fresh("billing"), SECRETS).document,
        make_plan(quiet, record(quiet, SECRETS), SECRETS).document,
    ]
    lines = render_markdown(docs).splitlines()
    assert lines[:9] == [
        MARKDOWN_MARKER,
        "## Plan for 3 apps: BLOCKED (1 of 3 apps) — 2 to delete, 3 to create, 1 to adopt,"
        " 1 to update; 2 drifted, 1 unmanaged",
        "",
        "> [!CAUTION]",
        f"> {BLOCKED_NOTE}",
        "> - `demo`: legacy is protected (protect: true in state); set protect: false in a"
        " separate apply before deleting it",
        "",
        "No changes: `quiet`",
        "",
    ]
    assert lines[9].startswith("### Plan for `demo`: BLOCKED — ")


def test_markdown_for_one_app_has_no_totals_line() -> None:
    markdown = render_markdown([representative_plan().document])
    assert "\n## Plan for" not in markdown


def test_cut_markdown_keeps_whole_lines_and_closes_what_is_open() -> None:
    text = "<details><summary>s</summary>\n\n```text\n" + "line\n" * 50 + "```\n\n</details>\n"
    assert cut_markdown(text, 10_000, "NOTE\n") == text
    cut = cut_markdown(text, 80, "NOTE\n")
    assert len(cut) <= 80
    assert cut.endswith("line\n```\n\n</details>\nNOTE\n")
    assert "```\n\n</details>\n" not in cut[: -len("```\n\n</details>\nNOTE\n")]
    wide = cut_markdown(
        "é" * 10 + "\n" + "é" * 10 + "\n", 30, "N\n", size=lambda s: len(s.encode())
    )
    assert wide == "é" * 10 + "\nN\n"


def test_markdown_app_section_is_the_renderer_s_section() -> None:
    doc = representative_plan().document
    assert render_markdown([doc]) == MARKDOWN_MARKER + "\n" + markdown_app_section(doc)


def test_a_replacement_is_one_entry_with_a_warning_in_text_and_markdown() -> None:
    app, state = renamed("old-bot", "new-bot")
    doc = make_plan(app, state, ENV).document
    text = render_text([doc])
    lines = text.splitlines()
    assert lines[0] == "Plan for app demo: 1 to replace"
    assert lines[3:] == [
        "  -/+ replace old-bot -> new-bot (bots/demo/assistant.yaml)",
        "      ! warning: the userId changes, so the bot's identity changes: old-bot is deleted"
        " and new-bot created (users see a new bot; what RongCloud keeps for old-bot is not"
        " moved over)",
        '      ~ name: "Bot old-bot" -> "Bot new-bot"',
        '      ~ userId: "old-bot" -> "new-bot"',
    ]
    markdown = render_markdown([doc])
    assert "> **Replaced** `old-bot` → `new-bot`: the userId changes" in markdown
    assert "will be deleted" not in markdown
    assert '| -/+ replace | `old-bot` → `new-bot` | `name` | `"Bot old-bot"` |' in markdown
    assert markdown.count("| -/+ replace |") == 1


def test_webhook_integrations_do_not_list_dify_only_defaults() -> None:
    doc = make_plan(make_app(make_bot("a")), RecordedApp.fresh("demo"), SECRETS).document
    text = render_text([doc])
    assert "integrations[webhook].stream" not in text
    assert "integrations[webhook].handleResponse" not in text
    assert "      + integrations[dify_chat].stream: true" in text
    assert text.splitlines()[-1] == "      + protect: false"


# --- a ${NAME} renamed, its value the same ---------------------------------------------------


def renamed_reference_plan() -> Plan:
    """``name: ${BOT_NAME_A}`` applied, now ``${BOT_NAME_B}``: another variable, one value."""
    env = {**SECRETS, "BOT_NAME_A": "Assistant", "BOT_NAME_B": "Assistant"}
    fixed = RecordedApp(app="demo", lineage="l-1", serial=0, salt="s", bots={})
    state = record(make_app(make_bot("a", name="${BOT_NAME_A}")), env, fixed)
    return make_plan(make_app(make_bot("a", name="${BOT_NAME_B}")), state, env)


def test_a_renamed_reference_reads_renamed_in_text() -> None:
    plan = renamed_reference_plan()
    assert render_text([plan.document]) == (
        "Plan for app demo: 1 to update\n"
        f"Plan id: {plan.id} (state serial 1, lineage l-1)\n"
        "\n"
        "  ~ update a (bots/demo/a.yaml)\n"
        "      ~ name: (sensitive, reference renamed, value unchanged)\n"
    )


def test_a_renamed_reference_reads_renamed_in_markdown() -> None:
    plan = renamed_reference_plan()
    text = render_text([plan.document])
    assert render_markdown([plan.document]) == (
        f"{MARKDOWN_MARKER}\n"
        "### Plan for `demo`: 1 to update\n"
        "\n"
        f"Plan id: `{plan.id}` (state serial 1, lineage l-1)\n"
        "\n"
        "| Action | Bot | Field | Before | After |\n"
        "|---|---|---|---|---|\n"
        "| ~ update | `a` | `name` | (sensitive) |"
        " (sensitive, reference renamed, value unchanged) |\n"
        "\n"
        "<details><summary>Full plan</summary>\n"
        "\n"
        f"```text\n{text}```\n"
        "\n"
        "</details>\n"
    )


def test_a_renamed_reference_is_flagged_in_json() -> None:
    plan = renamed_reference_plan()
    (entry,) = json.loads(render_json([plan.document]))["plans"]
    same = plan.changes[0].fields[0].old["sensitive"]
    assert entry["changes"][0]["fields"] == [
        {
            "path": "name",
            "old": {"sensitive": same, "template": "${BOT_NAME_A}"},
            "new": {"sensitive": same, "template": "${BOT_NAME_B}"},
            "sensitive": True,
            "reference_renamed": True,
        }
    ]
    assert "Assistant" not in render_json([plan.document])


def test_a_renamed_reference_with_another_value_reads_changed() -> None:
    env = {**SECRETS, "BOT_NAME_A": "Assistant", "BOT_NAME_B": "Helper"}
    state = record(make_app(make_bot("a", name="${BOT_NAME_A}")), env)
    doc = make_plan(make_app(make_bot("a", name="${BOT_NAME_B}")), state, env).document
    assert render_text([doc]).splitlines()[-1] == "      ~ name: (sensitive, changed)"
    assert "| `name` | (sensitive) | (sensitive, changed) |" in render_markdown([doc])
