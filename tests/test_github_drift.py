"""The drift issue body: per-app table, "since" carried over, parsing it back."""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.forge.comment import AppFailure
from provisioner.forge.drift import (
    DRIFT_DATA_PREFIX,
    DRIFT_MARKER,
    DriftEntry,
    drift_entries,
    drift_record,
    parse_drift_since,
    render_drift_issue,
)
from provisioner.plan import make_plan
from provisioner.state.drift_record import BotSeen, DriftRecord, dumps_drift_record
from tests.github_support import deleting_doc, unchanged_doc
from tests.test_plan import ENV, live_of, make_app, make_bot, record

RUN_URL = "https://github.com/octo/bots/actions/runs/44"


def drifting_doc(app: str) -> dict[str, object]:
    doc = unchanged_doc(app)
    doc["drift"] = [{"user_id": "assistant", "kind": "changed", "fields": []}]
    doc["unmanaged"] = ["manual-1", "manual-2"]
    return doc


def test_entries_keep_the_previous_since() -> None:
    docs = [drifting_doc("prod"), unchanged_doc("quiet"), deleting_doc("staging")]
    entries = drift_entries(
        docs, {"prod": "2026-11-30T06:17:00Z", "gone": "x"}, "2026-12-01T06:17:00Z"
    )
    assert entries == [
        DriftEntry("prod", ("assistant",), ("manual-1", "manual-2"), 0, "2026-11-30T06:17:00Z"),
        DriftEntry("staging", (), (), 2, "2026-12-01T06:17:00Z"),
    ]


def test_issue_body_and_round_trip() -> None:
    entries = [
        DriftEntry("prod", ("assistant",), ("manual-1",), 0, "2026-11-30T06:17:00Z"),
        DriftEntry("staging", (), (), 2, "2026-12-01T06:17:00Z"),
    ]
    failures = [AppFailure("eu", "RongCloud refused the app key\n(code 1004)")]
    body = render_drift_issue(
        entries,
        failures,
        run_url=RUN_URL,
        checked_at="2026-12-01T06:17:00Z",
        kept_since={"eu": "2026-11-01T06:17:00Z"},
    )
    head, block = body.rstrip("\n").rsplit("\n", 1)
    assert head == (
        f"""{DRIFT_MARKER}
## 2 apps differ from git

| App | Drifted bots | Unmanaged bots | Pending changes | Since |
|---|---|---|---|---|
| `prod` | `assistant` | `manual-1` |  | 2026-11-30T06:17:00Z |
| `staging` |  |  | 2 | 2026-12-01T06:17:00Z |

Each app that differs has **two ways out**, both reviewed:

- **accept the server's version:** change the manifests to match it in a pull request; its \
merge records what the server holds (no call where it already matches);
- **revert to git:** a reviewer runs the dispatch workflow with this issue's number \
(`provisioner github apply --pending <number>`, in the protected environment), which applies \
the pending plan below exactly as this check planned it (the revert of the drift, and any \
change of git not applied yet); an app whose plan changed since is not applied, and a new \
pending plan is posted.

This issue is rewritten on every check and closed when nothing differs.

**Could not check:**

- `eu`: RongCloud refused the app key (code 1004)

---
Checked 2026-12-01T06:17:00Z · [workflow run]({RUN_URL})"""
    )
    assert block.startswith(DRIFT_DATA_PREFIX)
    assert parse_drift_since(body) == {
        "eu": "2026-11-01T06:17:00Z",
        "prod": "2026-11-30T06:17:00Z",
        "staging": "2026-12-01T06:17:00Z",
    }


def test_clean_body_and_long_name_lists() -> None:
    clean = render_drift_issue([], [], run_url=RUN_URL, checked_at="now")
    assert "## No drift: every app matches git" in clean
    assert parse_drift_since(clean) == {}
    many = DriftEntry("prod", tuple(f"b{i}" for i in range(12)), (), 0, "t")
    assert "`b9` and 2 more" in render_drift_issue([many], [], run_url=RUN_URL, checked_at="t")


def test_parse_errors_and_absent_block() -> None:
    assert parse_drift_since("written by hand") == {}
    with pytest.raises(ConfigError) as caught:
        parse_drift_since(f'x\n{DRIFT_DATA_PREFIX}{{"version": 1, "since": [1]}} -->')
    assert caught.value.message == "the drift issue's data block is malformed at since"
    with pytest.raises(ConfigError, match="is not valid JSON"):
        parse_drift_since(f"x\n{DRIFT_DATA_PREFIX}{{ -->")


def test_no_value_can_write_a_marker_in_the_issue() -> None:
    hostile = "<!-- provisioner:drift -->"
    entries = [DriftEntry("prod", (f"a{hostile}",), (hostile,), 1, f"t{hostile}\u2028")]
    body = render_drift_issue(
        entries, [AppFailure(hostile, f"failed {hostile}")], run_url=RUN_URL, checked_at="now"
    )
    assert body.splitlines()[0] == DRIFT_MARKER
    assert body.count("<!--") == 2 and body.count("-->") == 2  # the marker and the data block
    assert parse_drift_since(body) == {"prod": f"t{hostile}\u2028"}


def test_the_drift_record_says_per_bot_what_the_refresh_saw_and_holds_no_value() -> None:
    recorded_app = make_app(
        make_bot("edited"), make_bot("pending"), make_bot("deleted"), make_bot("retired")
    )
    recorded = record(recorded_app)
    desired = make_app(
        make_bot("edited"),
        make_bot("pending", type="Changed in git"),
        make_bot("deleted"),
        make_bot("new-bot"),
        make_bot("taken-bot"),
    )
    server = make_app(
        make_bot("edited", name="CANARY-by-hand", metadata={"version": "9"}),
        make_bot("pending"),
        make_bot("retired"),
        make_bot("taken-bot"),
        make_bot("stray-bot"),
    )
    doc = make_plan(desired, recorded, ENV, live_of(server)).document
    declared = [bot.userId for bot in desired.bots]
    made = drift_record(doc, declared, at="2026-12-07T03:00:12Z", run=RUN_URL)
    assert made == DriftRecord(
        "demo",
        "2026-12-07T03:00:12Z",
        RUN_URL,
        {
            "edited": BotSeen("drifted", ("metadata.version", "name")),
            "pending": BotSeen("in_sync"),
            "deleted": BotSeen("missing"),
            "retired": BotSeen("in_sync"),
            "taken-bot": BotSeen("unmanaged"),
            "stray-bot": BotSeen("unmanaged"),
        },
        recorded.lineage,
        recorded.serial,
    )
    assert "CANARY" not in dumps_drift_record(made)
