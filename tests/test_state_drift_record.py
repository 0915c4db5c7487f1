"""state/drift_record.py: what the last drift run saw of an app, as a typed value, its stable
JSON document, and strict, bounded parsing of what a shared store hands back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.errors import StateError
from provisioner.state.drift_record import (
    MAX_RECORD_BYTES,
    BotSeen,
    DriftRecord,
    dumps_drift_record,
    parse_drift_record,
)

RUN = "https://github.com/octo/bots/actions/runs/42"
RECORD = DriftRecord(
    "demo",
    "2026-12-07T03:00:12Z",
    RUN,
    {
        "xiaozhi-bot": BotSeen("drifted", ("name", "metadata.version")),
        "hr-bot": BotSeen("unmanaged"),
        "old-bot": BotSeen("missing"),
        "assistant-bot": BotSeen("in_sync"),
    },
    "0b6f-lineage",
    4,
)
HINT = "the next drift run writes it again; until then pull-request plans do not show what it saw"


def test_the_document_is_sorted_stable_json_of_names_and_paths() -> None:
    text = dumps_drift_record(RECORD)
    assert text == (
        "{\n"
        '  "app": "demo",\n'
        '  "at": "2026-12-07T03:00:12Z",\n'
        '  "bots": {\n'
        '    "assistant-bot": {\n      "fields": [],\n      "status": "in_sync"\n    },\n'
        '    "hr-bot": {\n      "fields": [],\n      "status": "unmanaged"\n    },\n'
        '    "old-bot": {\n      "fields": [],\n      "status": "missing"\n    },\n'
        '    "xiaozhi-bot": {\n      "fields": [\n        "name",\n        "metadata.version"\n'
        '      ],\n      "status": "drifted"\n    }\n'
        "  },\n"
        f'  "run": "{RUN}",\n'
        '  "state": {\n    "lineage": "0b6f-lineage",\n    "serial": 4\n  },\n'
        '  "version": 1\n'
        "}\n"
    )
    assert parse_drift_record(text.encode(), "here", "demo") == RECORD


def test_a_run_outside_ci_and_a_never_written_state_round_trip() -> None:
    record = DriftRecord("demo", "2026-12-07T03:00:12Z", None, {}, None, 0)
    assert parse_drift_record(dumps_drift_record(record).encode(), "here", "demo") == record


def damaged(data: object, app: str = "demo") -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(StateError) as caught:
        parse_drift_record(raw, "drift/demo.json", app)
    assert caught.value.hint in (HINT, "upgrade provisioner; the record is ignored until then")
    return caught.value.message


def with_(**changes: Any) -> dict[str, Any]:
    return {**RECORD.data, **changes}


def test_what_is_not_a_record_is_refused_naming_the_problem() -> None:
    prefix = "drift/demo.json: drift record is damaged: "
    assert damaged(b"{") == prefix + "not valid JSON"
    assert damaged(b"[" * 100_000) == prefix + "not valid JSON"
    assert damaged(b"\xff") == prefix + "not valid JSON"
    assert damaged(b" " * (MAX_RECORD_BYTES + 1)) == (
        prefix + f"over {MAX_RECORD_BYTES} bytes ({MAX_RECORD_BYTES + 1})"
    )
    assert damaged([]) == prefix + "the record must be a JSON object"
    assert damaged(with_(version=True)) == prefix + "'version' must be a positive integer"
    assert damaged(with_(at="yesterday")) == prefix + "'at' must be an ISO 8601 time"
    assert damaged(with_(run="javascript:alert(1)")) == prefix + "'run' must be an http(s) link"
    assert damaged(with_(run=RUN + ")![x](https://evil)")) == (
        prefix + "'run' must be an http(s) link"
    )
    assert damaged(with_(state={"lineage": None, "serial": -1})) == (
        prefix + "state.serial must be a non-negative integer"
    )
    crowded = {f"b{index}": {"status": "in_sync", "fields": []} for index in range(101)}
    assert damaged(with_(bots=crowded)) == prefix + "more than 100 bots"
    assert damaged(with_(app="other")) == (
        prefix + "it is the record of app other, not of app demo"
    )


def test_bots_must_be_names_with_a_known_status_and_paths_only_when_drifted() -> None:
    prefix = "drift/demo.json: drift record is damaged: "
    bad_status = with_(bots={"a": {"status": "fine", "fields": []}})
    assert damaged(bad_status) == (
        prefix + "bots.a.status must be one of drifted, missing, unmanaged, in_sync"
    )
    no_fields = with_(bots={"a": {"status": "drifted", "fields": []}})
    assert damaged(no_fields) == (
        prefix + "bots.a.fields must name the drifted fields, and only those"
    )
    extra_fields = with_(bots={"a": {"status": "missing", "fields": ["name"]}})
    assert damaged(extra_fields) == (
        prefix + "bots.a.fields must name the drifted fields, and only those"
    )
    not_a_path = with_(bots={"a": {"status": "drifted", "fields": [{"value": "x"}]}})
    assert damaged(not_a_path) == (
        prefix + "a field path of bots.a must be a string of 1 to 256 characters"
    )
    separator = with_(
        bots={"a\u2028<!-- provisioner:apply -->": {"status": "in_sync", "fields": []}}
    )
    assert damaged(separator) == (prefix + "a bot id holds a control character or a line separator")


def test_a_newer_version_is_refused_with_an_upgrade_hint() -> None:
    with pytest.raises(StateError) as caught:
        parse_drift_record(json.dumps(with_(version=2)).encode(), "drift/demo.json", "demo")
    assert caught.value.message == (
        "drift/demo.json: drift record version 2 is newer than this provisioner reads (1)"
    )
    assert caught.value.hint == "upgrade provisioner; the record is ignored until then"
