"""What the last drift run saw of one app (the drift record): names and field paths only.

`github drift` and `provisioner drift` refresh every app with its credentials; each keeps,
per app, when it looked, in which run, the state version it compared with, and per bot what
it saw: ``drifted`` (changed on the server outside git, with the changed field paths),
``missing`` (recorded, gone from the server), ``unmanaged`` (on the server, not recorded) or
``in_sync``. `github plan`, which has neither secrets nor a refresh, reads it to say what a
merge will meet (:mod:`provisioner.forge.seen`). Every backend keeps it beside the state,
never in it: writing it bumps no serial, needs no lock and never conflicts with an apply::

    {
      "app": "demo",
      "at": "2026-12-07T03:00:12Z",
      "bots": {"helper-bot": {"fields": ["name"], "status": "drifted"},
               "hr-bot": {"fields": [], "status": "unmanaged"}},
      "run": "https://github.com/octo/bots/actions/runs/42",
      "state": {"lineage": "0b6f...-uuid4", "serial": 4},
      "version": 1
    }

Never a value: a field path names a field (``metadata.version``), not what it holds. A
record comes from a shared store, so reading it is strict and bounded
(:func:`parse_drift_record`): a damaged record is a StateError, which readers report and skip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypedDict, cast, get_args

from provisioner.errors import StateError
from provisioner.state.holder import parse_utc

DRIFT_RECORD_VERSION = 1
"""The newest drift record version this release reads and writes."""

SeenStatus = Literal["drifted", "missing", "unmanaged", "in_sync"]
SEEN_STATUSES: tuple[SeenStatus, ...] = get_args(SeenStatus)

MAX_RECORD_BYTES = 256 * 1024
"""A record names at most a few dozen bots and their field paths."""
MAX_SEEN_BOTS = 100
"""An app holds at most 10 bots on the server (plus those recorded and gone)."""
MAX_FIELDS = 64
"""Field paths per drifted bot."""
MAX_NAME = 256
"""Characters of a userId, a field path or a lineage."""
MAX_RUN = 1024
"""Characters of the run's link."""
_RUN_LINK = re.compile(r"https?://[^\s()<>\[\]\"'`\\]+")
"""A link that stays one markdown link target: no space, bracket, quote or backtick."""
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters and line separators: never in a name or a field path."""


class SeenBotDoc(TypedDict):
    """One bot as the record stores it (``fields``: the changed field paths of a
    ``drifted`` bot, at least one; empty for the others)."""

    status: SeenStatus
    fields: list[str]


class SeenStateDoc(TypedDict):
    """The state the drift run compared the server with (``lineage`` None: never written)."""

    lineage: str | None
    serial: int


class DriftRecordDoc(TypedDict):
    """The drift record of one app (:attr:`DriftRecord.data`; see the module docstring)."""

    version: int
    app: str
    at: str
    run: str | None
    state: SeenStateDoc
    bots: dict[str, SeenBotDoc]


@dataclass(frozen=True)
class BotSeen:
    """What the drift run saw of one bot: its status and, when it drifted, the changed
    field paths."""

    status: SeenStatus
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftRecord:
    """What one drift run saw of one app (a value)."""

    app: str
    at: str
    """When the run looked: ISO 8601 UTC to the second (``2026-12-07T03:00:12Z``)."""
    run: str | None
    """The run's page (a CI run), None for a run outside CI."""
    bots: Mapping[str, BotSeen] = field(default_factory=dict)
    lineage: str | None = None
    serial: int = 0
    """The state version the server was compared with."""

    @property
    def data(self) -> DriftRecordDoc:
        """JSON view as stored (serialise with sorted keys: :func:`dumps_drift_record`)."""
        return {
            "version": DRIFT_RECORD_VERSION,
            "app": self.app,
            "at": self.at,
            "run": self.run,
            "state": {"lineage": self.lineage, "serial": self.serial},
            "bots": {
                user_id: {"status": seen.status, "fields": list(seen.fields)}
                for user_id, seen in sorted(self.bots.items())
            },
        }

    @classmethod
    def from_data(cls, data: object, *, where: str) -> DriftRecord:
        """Parse a record document; StateError naming ``where`` and the first problem."""
        doc = _checked(data, where)
        return cls(
            app=doc["app"],
            at=doc["at"],
            run=doc["run"],
            bots={
                user_id: BotSeen(seen["status"], tuple(seen["fields"]))
                for user_id, seen in doc["bots"].items()
            },
            lineage=doc["state"]["lineage"],
            serial=doc["state"]["serial"],
        )


def dumps_drift_record(record: DriftRecord) -> str:
    """Sorted, stable JSON (indent 2, trailing newline), like the state document."""
    return json.dumps(record.data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse_drift_record(raw: bytes, where: str, app: str) -> DriftRecord:
    """The drift record of ``app`` in ``raw``; StateError naming ``where`` when it is not
    one (too large, not JSON, the wrong shape, a newer version, another app's)."""
    if len(raw) > MAX_RECORD_BYTES:
        raise _damaged(where, f"over {MAX_RECORD_BYTES} bytes ({len(raw)})")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged(where, "not valid JSON") from None
    record = DriftRecord.from_data(data, where=where)
    if record.app != app:
        raise _damaged(where, f"it is the record of app {record.app}, not of app {app}")
    return record


def _checked(data: object, where: str) -> DriftRecordDoc:
    doc = _mapping(data, where, "the record")
    version = doc.get("version")
    if not _count(version) or cast(int, version) < 1:
        raise _damaged(where, "'version' must be a positive integer")
    if cast(int, version) > DRIFT_RECORD_VERSION:
        raise StateError(
            f"{where}: drift record version {version} is newer than this provisioner reads"
            f" ({DRIFT_RECORD_VERSION})",
            hint="upgrade provisioner; the record is ignored until then",
        )
    _name(doc.get("app"), where, "'app'")
    if parse_utc(_text(doc.get("at"), where, "'at'", MAX_NAME)) is None:
        raise _damaged(where, "'at' must be an ISO 8601 time")
    run = doc.get("run")
    if run is not None and not _RUN_LINK.fullmatch(_text(run, where, "'run'", MAX_RUN)):
        raise _damaged(where, "'run' must be an http(s) link")
    state = _mapping(doc.get("state"), where, "'state'")
    if state.get("lineage") is not None:
        _name(state.get("lineage"), where, "state.lineage")
    if not _count(state.get("serial")):
        raise _damaged(where, "state.serial must be a non-negative integer")
    bots = _mapping(doc.get("bots"), where, "'bots'")
    if len(bots) > MAX_SEEN_BOTS:
        raise _damaged(where, f"more than {MAX_SEEN_BOTS} bots")
    for user_id, seen in bots.items():
        _name(user_id, where, "a bot id")
        _check_seen(seen, where, f"bots.{user_id}")
    return cast(DriftRecordDoc, doc)


def _check_seen(data: object, where: str, what: str) -> None:
    seen = _mapping(data, where, what)
    if seen.get("status") not in SEEN_STATUSES:
        raise _damaged(where, f"{what}.status must be one of {', '.join(SEEN_STATUSES)}")
    fields = seen.get("fields")
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        raise _damaged(where, f"{what}.fields must be a list of at most {MAX_FIELDS} paths")
    if bool(fields) != (seen["status"] == "drifted"):
        raise _damaged(where, f"{what}.fields must name the drifted fields, and only those")
    for path in fields:
        _name(path, where, f"a field path of {what}")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _mapping(value: object, where: str, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _damaged(where, f"{what} must be a JSON object")
    return value


def _text(value: object, where: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _damaged(where, f"{what} must be a string of 1 to {limit} characters")
    return value


def _name(value: object, where: str, what: str) -> str:
    text = _text(value, where, what, MAX_NAME)
    if _FORBIDDEN.search(text):
        raise _damaged(where, f"{what} holds a control character or a line separator")
    return text


def _damaged(where: str, detail: str) -> StateError:
    return StateError(
        f"{where}: drift record is damaged: {detail}",
        hint="the next drift run writes it again; until then pull-request plans do not show"
        " what it saw",
    )
