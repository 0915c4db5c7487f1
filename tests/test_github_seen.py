"""github/seen.py: a drift record × a pull request's plan → what the reviewer is told about
what the last drift run saw (exact texts, in the log and in markdown)."""

from __future__ import annotations

from typing import Any

from provisioner.forge.comment import RunInfo, render_plan_comment
from provisioner.forge.seen import SeenApp, seen_apps, seen_markdown, seen_text
from provisioner.plan import PlanDoc, make_plan
from provisioner.plan.reviewed import covered
from provisioner.state.drift_record import BotSeen, DriftRecord
from tests.test_plan import ENV, make_app, make_bot, record

AT = "2026-12-07T03:00:12Z"
NOW = "2026-12-07T09:30:00Z"
RUN = "https://github.com/octo/bots/actions/runs/42"
BY = "(seen by the drift run of 2026-12-07 03:00 UTC, " + RUN + ")"
MD_BY = f"(seen by the [drift run of 2026-12-07 03:00 UTC]({RUN}))"


def pr_plan(**changes: Any) -> PlanDoc:
    """demo records xiaozhi-bot, old-bot and quiet-bot; the pull request creates hr-bot,
    deletes old-bot and changes xiaozhi-bot as ``changes`` say."""
    recorded = record(make_app(make_bot("xiaozhi-bot"), make_bot("old-bot"), make_bot("quiet-bot")))
    desired = make_app(
        make_bot("xiaozhi-bot", **changes), make_bot("quiet-bot"), make_bot("hr-bot")
    )
    return make_plan(desired, recorded, ENV, check_secrets=False).document


def drift_record(doc: PlanDoc, **bots: BotSeen) -> DriftRecord:
    """What a drift run saw against the state ``doc`` was planned from."""
    return DriftRecord("demo", AT, RUN, bots, doc["state"]["lineage"], doc["state"]["serial"])


def lines(apps: list[SeenApp]) -> list[str]:
    """The log lines, after the blank line that sets them apart from the plan."""
    text = seen_text(apps)
    assert text.startswith("\n")
    return text[1:].splitlines()


def test_each_bot_the_pull_request_changes_and_each_drifted_one_gets_its_line() -> None:
    doc = pr_plan(type="Support")
    seen = drift_record(
        doc,
        **{
            "hr-bot": BotSeen("unmanaged"),
            "xiaozhi-bot": BotSeen("drifted", ("name",)),
            "old-bot": BotSeen("missing"),
            "quiet-bot": BotSeen("drifted", ("metadata.version", "profileUrl")),
            "stray-bot": BotSeen("unmanaged"),
        },
    )
    apps = seen_apps([doc], {"demo": seen}, now=NOW)
    assert lines(apps) == [
        "What the last drift run saw:",
        f"  demo: old-bot is already gone from the server {BY}: this merge forgets it from"
        " the state",
        f"  demo: hr-bot exists on the server {BY}: this merge adopts it if the server still"
        " holds exactly this spec, else refuses it",
        f"  demo: xiaozhi-bot drifted in `name` {BY}: this merge will refuse it unless the PR"
        " sets `name` (or the app says `drift: revert`)",
        f"  demo: quiet-bot drifted in `metadata.version`, `profileUrl` {BY}: this merge leaves"
        " it alone; see the drift issue",
        f"  demo: stray-bot is on the server but not managed {BY}: this merge leaves it alone",
    ]
    assert seen_markdown(apps).split("\n") == [
        "",
        "**What the last drift run saw:**",
        "",
        f"- `demo`: `old-bot` is already gone from the server {MD_BY}: this merge forgets it"
        " from the state",
        f"- `demo`: `hr-bot` exists on the server {MD_BY}: this merge adopts it if the server"
        " still holds exactly this spec, else refuses it",
        f"- `demo`: `xiaozhi-bot` drifted in `name` {MD_BY}: this merge will refuse it unless"
        " the PR sets `name` (or the app says `drift: revert`)",
        f"- `demo`: `quiet-bot` drifted in `metadata.version`, `profileUrl` {MD_BY}: this merge"
        " leaves it alone; see the drift issue",
        f"- `demo`: `stray-bot` is on the server but not managed {MD_BY}: this merge leaves it"
        " alone",
        "",
        "",
    ]


def test_drift_the_pull_request_sets_is_made_as_declared_and_revert_is_said() -> None:
    doc = pr_plan(name="Xiaozhi", metadata={"version": "2"})
    drifted = BotSeen("drifted", ("name", "metadata.version"))
    apps = seen_apps([doc], {"demo": drift_record(doc, **{"xiaozhi-bot": drifted})}, now=NOW)
    assert lines(apps)[2] == (
        f"  demo: xiaozhi-bot drifted in `name`, `metadata.version` {BY}: the PR sets `name`,"
        " `metadata.version`, so this merge makes it as declared"
    )
    doc = pr_plan(metadata={"version": "2"})
    reverting = seen_apps(
        [doc],
        {"demo": drift_record(doc, **{"xiaozhi-bot": drifted})},
        now=NOW,
        reverting={"demo"},
    )
    assert lines(reverting)[2] == (
        f"  demo: xiaozhi-bot drifted in `name`, `metadata.version` {BY}: this merge reverts"
        " `name` (the app says `drift: revert`)"
    )


def test_deleted_on_the_server_and_as_recorded() -> None:
    doc = pr_plan(type="Support")
    missing = drift_record(
        doc,
        **{"xiaozhi-bot": BotSeen("missing"), "old-bot": BotSeen("drifted", ("name",))},
    )
    assert lines(seen_apps([doc], {"demo": missing}, now=NOW))[1:] == [
        f"  demo: old-bot drifted in `name` {BY}: this merge deletes it as reviewed",
        f"  demo: hr-bot is not on the server {BY}: this merge creates it",
        f"  demo: xiaozhi-bot was deleted on the server outside git {BY}: this merge will"
        " refuse it (or, if the app says `drift: revert`, create it again)",
    ]
    reverting = seen_apps([doc], {"demo": missing}, now=NOW, reverting=("demo",))
    assert lines(reverting)[3].endswith(
        ": this merge creates it again (the app says `drift: revert`)"
    )
    in_sync = drift_record(
        doc,
        **{"xiaozhi-bot": BotSeen("in_sync"), "old-bot": BotSeen("in_sync")},
    )
    assert lines(seen_apps([doc], {"demo": in_sync}, now=NOW))[1:] == [
        f"  demo: old-bot matches the recorded state {BY}: this merge deletes it",
        f"  demo: hr-bot is not on the server {BY}: this merge creates it",
        f"  demo: xiaozhi-bot matches the recorded state {BY}: this merge updates it",
    ]


def test_an_old_record_says_how_old_and_a_moved_state_says_so() -> None:
    doc = pr_plan(type="Support")
    old = DriftRecord("demo", "2026-12-01T03:00:12Z", None, {"hr-bot": BotSeen("unmanaged")})
    (line,) = lines(seen_apps([doc], {"demo": old}, now=NOW))[1:]
    assert line == (
        "  demo: hr-bot exists on the server (seen by the drift run of 2026-12-01 03:00 UTC,"
        " 6 days ago; the state has changed since): this merge adopts it if the server still"
        " holds exactly this spec, else refuses it"
    )
    assert "(seen by the drift run of 2026-12-01 03:00 UTC, 6 days ago; the state has" in (
        seen_markdown(seen_apps([doc], {"demo": old}, now=NOW))
    )
    yesterday = DriftRecord("demo", "2026-12-06T09:00:00Z", None, {"hr-bot": BotSeen("unmanaged")})
    assert ", 1 day ago;" in seen_text(seen_apps([doc], {"demo": yesterday}, now=NOW))


def test_without_a_record_an_app_with_changes_says_so_and_nothing_else_is_shown() -> None:
    changed, quiet = (
        pr_plan(type="Support"),
        make_plan(
            make_app(make_bot("a"), name="quiet"),
            record(make_app(make_bot("a"), name="quiet")),
            ENV,
        ).document,
    )
    apps = seen_apps([changed, quiet], {"demo": None, "quiet": None}, now=NOW)
    assert seen_text(apps) == "\nWhat the last drift run saw:\n  demo: no drift run recorded yet\n"
    assert "- `demo`: no drift run recorded yet" in seen_markdown(apps)
    assert seen_apps([changed], {}, now=NOW) == []  # not read: nothing to say
    in_sync = DriftRecord("quiet", AT, RUN, {"a": BotSeen("in_sync")})
    assert seen_apps([quiet], {"quiet": in_sync}, now=NOW) == []
    assert seen_text([]) == seen_markdown([]) == ""


def test_names_from_a_record_are_rendered_safe() -> None:
    doc = pr_plan(type="Support")
    hostile = drift_record(doc, **{"x`y|<b>\u202e": BotSeen("unmanaged")})
    apps = seen_apps([doc], {"demo": hostile}, now=NOW)
    assert "x`y|<b>\\u202e is on the server but not managed" in seen_text(apps)
    assert "- `demo`: `` x`y\\|<b>\\u202e `` is on the server" in seen_markdown(apps)


def test_covered_is_the_path_the_change_sets_or_inside_or_around_it() -> None:
    assert covered("name", ["name"])
    assert covered("integrations[webhook].callbackUrl", ["integrations[webhook]"])
    assert covered("metadata", ["metadata.version"])
    assert not covered("name", ["type", "metadata.name"])
    assert not covered("metadata.versions", ["metadata.version"])


def test_the_plan_comment_shows_the_lines_after_its_summary() -> None:
    doc = pr_plan(type="Support")
    seen = seen_markdown(seen_apps([doc], {"demo": drift_record(doc)}, now=NOW))
    body = render_plan_comment([doc], RunInfo(RUN, "a" * 40), notes=seen)
    _table, rest = body.split("\n| `demo` | ", 1)
    assert rest.split("\n", 1)[1].startswith(
        "\n\n**What the last drift run saw:**\n\n- `demo`: `hr-bot` is not on the server"
    )
    assert body.index("What the last drift run saw") < body.index("<details>")
    assert render_plan_comment([doc], RunInfo(RUN, "a" * 40)).count("drift run") == 0
