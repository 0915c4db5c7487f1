"""What the last drift run saw, on a pull request's plan: the apps' drift records × the
plan's changes → one line per bot worth a reviewer's eye. Pure.

`github plan` has no secret and no refresh: it cannot see the server. The scheduled `github
drift` can, and records what it saw (:mod:`provisioner.state.drift_record`). Per bot the pull
request changes, and per bot the record saw drifted, deleted or unmanaged, a line says what
it saw and what the merge will do by the rules of `github apply` (the reviewed change per
bot: ``provisioner/plan/reviewed.py``)::

    the PR ...            the drift run saw ...         the merge ...
    creates the bot       it on the server              adopts it if the server still holds
                                                        exactly this spec, else refuses it
    creates the bot       it not on the server          creates it
    updates the bot       drift in fields the PR sets   makes it as declared
    updates the bot       drift in other fields         refuses it unless the PR sets them
                                                        (``drift: revert``: reverts them)
    updates the bot       it deleted                    refuses it (``drift: revert``:
                                                        creates it again)
    updates, deletes it   it as recorded                updates, deletes it
    deletes the bot       it already gone               forgets it from the state
    deletes the bot       drift                         deletes it as reviewed
    does not change it    drift, deleted, unmanaged     leaves it alone

Each line names the run's time (and its age, from a day on) and says when the state has
changed since the run; an app the pull request changes without any record gets one line
saying so. Names are rendered safe (:mod:`provisioner.render.safe`): a record is data.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from provisioner.plan.document import ChangeDoc, PlanDoc
from provisioner.plan.reviewed import covered
from provisioner.render.markdown import markdown_code
from provisioner.render.safe import terminal_safe
from provisioner.state.drift_record import BotSeen, DriftRecord
from provisioner.state.holder import parse_utc

SEEN_TITLE = "What the last drift run saw"
_SHOWN_FIELDS = 5
_DAY = 86_400
_ON_THE_SERVER = ("unmanaged", "in_sync", "drifted")
_ADOPTS = "this merge adopts it if the server still holds exactly this spec, else refuses it"


@dataclass(frozen=True)
class Name:
    """A bot or app name: plain in the log, inline code in markdown."""

    text: str


@dataclass(frozen=True)
class Field:
    """A field path (or a setting): in backticks in the log, inline code in markdown."""

    text: str


Part = str | Name | Field
_REVERT = Field("drift: revert")


@dataclass(frozen=True)
class SeenLine:
    """One bot: what the run saw (before "(seen by ...)") and what the merge does."""

    seen: tuple[Part, ...]
    merge: tuple[Part, ...]


@dataclass(frozen=True)
class SeenApp:
    """The lines of one app and the run they come from (``record`` None: no run recorded
    one yet; ``moved``: the state changed since the run)."""

    app: str
    record: DriftRecord | None
    lines: tuple[SeenLine, ...] = ()
    age: str | None = None
    moved: bool = False


def seen_apps(
    docs: Sequence[PlanDoc],
    records: Mapping[str, DriftRecord | None],
    *,
    now: str,
    reverting: Collection[str] = (),
) -> list[SeenApp]:
    """Per planned app with a record (or without one, when the plan changes it): its lines.
    ``records`` maps an app to its record (None: none recorded; an app not in it was not
    read); ``reverting``: the apps whose app.yaml says ``drift: revert``; ``now``: ISO UTC."""
    found = []
    for doc in docs:
        app = doc["app"]
        if app not in records:
            continue
        record = records[app]
        if record is None:
            if doc["changes"]:
                found.append(SeenApp(app, None))
            continue
        lines = _lines(doc, record, app in reverting)
        if lines:
            moved = (record.lineage, record.serial) != (
                doc["state"]["lineage"],
                doc["state"]["serial"],
            )
            found.append(SeenApp(app, record, tuple(lines), _age(record.at, now), moved))
    return found


def _lines(doc: PlanDoc, record: DriftRecord, revert: bool) -> list[SeenLine]:
    changed = {change["user_id"] for change in doc["changes"]}
    lines = [
        _changed(change, record.bots.get(change["user_id"]), revert) for change in doc["changes"]
    ]
    lines += [
        _untouched(user_id, seen)
        for user_id, seen in sorted(record.bots.items())
        if user_id not in changed
    ]
    return [line for line in lines if line is not None]


def _changed(change: ChangeDoc, seen: BotSeen | None, revert: bool) -> SeenLine | None:
    bot, action = Name(change["user_id"]), change["action"]
    status = seen.status if seen is not None else None
    if action in ("create", "adopt"):
        if status in _ON_THE_SERVER:
            return SeenLine((bot, " exists on the server"), (_ADOPTS,))
        return SeenLine((bot, " is not on the server"), ("this merge creates it",))
    if seen is not None and seen.status == "drifted":
        drifted = (bot, " drifted in ", *_fields(seen.fields))
        if action == "delete":
            return SeenLine(drifted, ("this merge deletes it as reviewed",))
        return SeenLine(drifted, _drifted_update(change, seen, revert))
    if status == "missing":
        return _missing(bot, action, revert)
    if status == "in_sync":
        verb = "deletes" if action == "delete" else "updates"
        return SeenLine((bot, " matches the recorded state"), (f"this merge {verb} it",))
    return None


def _missing(bot: Name, action: str, revert: bool) -> SeenLine:
    if action == "delete":
        gone = (bot, " is already gone from the server")
        return SeenLine(gone, ("this merge forgets it from the state",))
    deleted = (bot, " was deleted on the server outside git")
    if revert:
        return SeenLine(deleted, ("this merge creates it again (the app says ", _REVERT, ")"))
    merge = ("this merge will refuse it (or, if the app says ", _REVERT, ", create it again)")
    return SeenLine(deleted, merge)


def _drifted_update(change: ChangeDoc, seen: BotSeen, revert: bool) -> tuple[Part, ...]:
    sets = [field["path"] for field in change["fields"]]
    outside = [path for path in seen.fields if not covered(path, sets)]
    if not outside:
        return ("the PR sets ", *_fields(seen.fields), ", so this merge makes it as declared")
    if revert:
        return ("this merge reverts ", *_fields(outside), " (the app says ", _REVERT, ")")
    return (
        "this merge will refuse it unless the PR sets ",
        *_fields(outside),
        " (or the app says ",
        _REVERT,
        ")",
    )


def _untouched(user_id: str, seen: BotSeen) -> SeenLine | None:
    bot = Name(user_id)
    alone = "this merge leaves it alone; see the drift issue"
    if seen.status == "drifted":
        return SeenLine((bot, " drifted in ", *_fields(seen.fields)), (alone,))
    if seen.status == "missing":
        return SeenLine((bot, " was deleted on the server outside git"), (alone,))
    if seen.status == "unmanaged":
        return SeenLine((bot, " is on the server but not managed"), ("this merge leaves it alone",))
    return None


def _fields(paths: Sequence[str]) -> tuple[Part, ...]:
    parts: list[Part] = []
    for index, path in enumerate(paths[:_SHOWN_FIELDS]):
        parts += [", ", Field(path)] if index else [Field(path)]
    more = len(paths) - _SHOWN_FIELDS
    return (*parts, f" and {more} more") if more > 0 else tuple(parts)


def _age(at: str, now: str) -> str | None:
    """``3 days ago`` for a record at least a day old, else None."""
    then, current = parse_utc(at), parse_utc(now)
    if then is None or current is None:
        return None
    days = int((current - then).total_seconds() // _DAY)
    if days < 1:
        return None
    return "1 day ago" if days == 1 else f"{days} days ago"


def _when(at: str) -> str:
    """``2026-12-07 03:00 UTC``."""
    moment = parse_utc(at)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else at


# --- rendering --------------------------------------------------------------------------------


def seen_text(apps: Sequence[SeenApp]) -> str:
    """The lines for the job log ("" when there are none)."""
    if not apps:
        return ""
    out = ["", f"{SEEN_TITLE}:"]
    for each in apps:
        app = terminal_safe(each.app)
        if each.record is None:
            out.append(f"  {app}: no drift run recorded yet")
            continue
        run = f", {each.record.run}" if each.record.run else ""
        by = f"seen by the drift run of {_when(each.record.at)}{run}{_notes(each)}"
        out += [f"  {app}: {_plain(line.seen)} ({by}): {_plain(line.merge)}" for line in each.lines]
    return "\n".join(out) + "\n"


def seen_markdown(apps: Sequence[SeenApp]) -> str:
    """The lines for the plan comment and the job summary ("" when there are none)."""
    if not apps:
        return ""
    out = ["", f"**{SEEN_TITLE}:**", ""]
    for each in apps:
        app = markdown_code(each.app)
        if each.record is None:
            out.append(f"- {app}: no drift run recorded yet")
            continue
        run = f"drift run of {_when(each.record.at)}"
        link = f"[{run}]({each.record.run})" if each.record.run else run
        by = f"seen by the {link}{_notes(each)}"
        out += [
            f"- {app}: {_markdown(line.seen)} ({by}): {_markdown(line.merge)}"
            for line in each.lines
        ]
    return "\n".join(out) + "\n\n"


def _notes(each: SeenApp) -> str:
    age = f", {each.age}" if each.age else ""
    return age + ("; the state has changed since" if each.moved else "")


def _plain(parts: Sequence[Part]) -> str:
    return "".join(
        terminal_safe(part.text)
        if isinstance(part, Name)
        else f"`{terminal_safe(part.text)}`"
        if isinstance(part, Field)
        else part
        for part in parts
    )


def _markdown(parts: Sequence[Part]) -> str:
    return "".join(part if isinstance(part, str) else markdown_code(part.text) for part in parts)
