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
from dataclasses import dataclass, field

from provisioner.forge.wording import GITHUB, Wording
from provisioner.plan.document import ChangeDoc, PlanDoc
from provisioner.plan.reviewed import covered
from provisioner.render.markdown import markdown_code
from provisioner.render.safe import terminal_safe
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr
from provisioner.state.drift_record import BotSeen, DriftRecord
from provisioner.state.holder import parse_utc

SEEN_TITLE = tr(DEFAULT_LANG, "seen.title")
_SHOWN_FIELDS = 5
_DAY = 86_400
_ON_THE_SERVER = ("unmanaged", "in_sync", "drifted")


@dataclass(frozen=True)
class Name:
    """A bot or app name: plain in the log, inline code in markdown."""

    text: str


@dataclass(frozen=True)
class Field:
    """A field path (or a setting): in backticks in the log, inline code in markdown."""

    text: str


@dataclass(frozen=True)
class Fields:
    """Field paths as a list (the first few, and how many more)."""

    paths: tuple[str, ...]


Part = Name | Field | Fields
_REVERT = Field("drift: revert")


@dataclass(frozen=True)
class Phrase:
    """A template of the catalog (``seen.*``) and its parts."""

    key: str
    parts: Mapping[str, Part] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenLine:
    """One bot: what the run saw (before "(seen by ...)") and what the merge does."""

    seen: Phrase
    merge: Phrase


@dataclass(frozen=True)
class SeenApp:
    """The lines of one app and the run they come from (``record`` None: no run recorded
    one yet; ``moved``: the state changed since the run)."""

    app: str
    record: DriftRecord | None
    lines: tuple[SeenLine, ...] = ()
    days: int | None = None
    """The record's age in whole days, from one day on."""
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
            found.append(SeenApp(app, record, tuple(lines), _days(record.at, now), moved))
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
    bot, action = {"bot": Name(change["user_id"])}, change["action"]
    status = seen.status if seen is not None else None
    if action in ("create", "adopt"):
        if status in _ON_THE_SERVER:
            return SeenLine(Phrase("seen.exists", bot), Phrase("seen.adopts"))
        return SeenLine(Phrase("seen.not_on_server", bot), Phrase("seen.creates"))
    if seen is not None and seen.status == "drifted":
        drifted = Phrase("seen.drifted", {**bot, "fields": Fields(seen.fields)})
        if action == "delete":
            return SeenLine(drifted, Phrase("seen.deletes_as_reviewed"))
        return SeenLine(drifted, _drifted_update(change, seen, revert))
    if status == "missing":
        return _missing(bot, action, revert)
    if status == "in_sync":
        verb = "seen.merge_deletes" if action == "delete" else "seen.merge_updates"
        return SeenLine(Phrase("seen.matches", bot), Phrase(verb))
    return None


def _missing(bot: Mapping[str, Part], action: str, revert: bool) -> SeenLine:
    if action == "delete":
        return SeenLine(Phrase("seen.gone", bot), Phrase("seen.forgets"))
    deleted = Phrase("seen.deleted", bot)
    if revert:
        return SeenLine(deleted, Phrase("seen.creates_again", {"revert": _REVERT}))
    return SeenLine(deleted, Phrase("seen.will_refuse_missing", {"revert": _REVERT}))


def _drifted_update(change: ChangeDoc, seen: BotSeen, revert: bool) -> Phrase:
    sets = [field["path"] for field in change["fields"]]
    outside = tuple(path for path in seen.fields if not covered(path, sets))
    if not outside:
        return Phrase("seen.sets", {"fields": Fields(seen.fields)})
    key = "seen.reverts" if revert else "seen.will_refuse"
    return Phrase(key, {"fields": Fields(outside), "revert": _REVERT})


def _untouched(user_id: str, seen: BotSeen) -> SeenLine | None:
    bot = {"bot": Name(user_id)}
    alone = Phrase("seen.alone_drift")
    if seen.status == "drifted":
        return SeenLine(Phrase("seen.drifted", {**bot, "fields": Fields(seen.fields)}), alone)
    if seen.status == "missing":
        return SeenLine(Phrase("seen.deleted", bot), alone)
    if seen.status == "unmanaged":
        return SeenLine(Phrase("seen.unmanaged", bot), Phrase("seen.alone"))
    return None


def _days(at: str, now: str) -> int | None:
    """The record's age in whole days when it is at least a day old, else None."""
    then, current = parse_utc(at), parse_utc(now)
    if then is None or current is None:
        return None
    days = int((current - then).total_seconds() // _DAY)
    return days if days >= 1 else None


def _when(at: str) -> str:
    """``2026-12-07 03:00 UTC``."""
    moment = parse_utc(at)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else at


# --- rendering --------------------------------------------------------------------------------


def seen_text(apps: Sequence[SeenApp], wording: Wording = GITHUB) -> str:
    """The lines for the job log, in English ("" when there are none)."""
    if not apps:
        return ""
    lang = DEFAULT_LANG
    terms = wording.terms(lang)
    out = ["", f"{SEEN_TITLE}:"]
    for each in apps:
        app = terminal_safe(each.app)
        if each.record is None:
            out.append(f"  {app}: {tr(lang, 'seen.no_record')}")
            continue
        run = f", {each.record.run}" if each.record.run else ""
        when = tr(lang, "seen.run_of", when=_when(each.record.at)) + run
        by = tr(lang, "seen.by", run=when, notes=_notes(each, lang))
        out += [
            f"  {app}: {_say(line.seen, lang, False, terms)} ({by}):"
            f" {_say(line.merge, lang, False, terms)}"
            for line in each.lines
        ]
    return "\n".join(out) + "\n"


def seen_markdown(
    apps: Sequence[SeenApp], lang: Lang = DEFAULT_LANG, wording: Wording = GITHUB
) -> str:
    """The lines for the plan comment and the job summary ("" when there are none)."""
    if not apps:
        return ""
    terms = wording.terms(lang)
    out = ["", f"**{tr(lang, 'seen.title')}:**", ""]
    for each in apps:
        app = markdown_code(each.app)
        if each.record is None:
            out.append(f"- {app}: {tr(lang, 'seen.no_record')}")
            continue
        run = tr(lang, "seen.run_of", when=_when(each.record.at))
        link = f"[{run}]({each.record.run})" if each.record.run else run
        by = tr(lang, "seen.by", run=link, notes=_notes(each, lang))
        out += [
            tr(
                lang,
                "seen.line",
                app=app,
                seen=_say(line.seen, lang, True, terms),
                by=by,
                merge=_say(line.merge, lang, True, terms),
            )
            for line in each.lines
        ]
    return "\n".join(out) + "\n\n"


def _notes(each: SeenApp, lang: Lang) -> str:
    age = plural(lang, "seen.age", each.days) if each.days else ""
    return age + (tr(lang, "seen.moved") if each.moved else "")


def _say(phrase: Phrase, lang: Lang, markdown: bool, terms: Mapping[str, str]) -> str:
    parts = {name: _part(part, lang, markdown) for name, part in phrase.parts.items()}
    return tr(lang, phrase.key, **terms, **parts)


def _part(part: Part, lang: Lang, markdown: bool) -> str:
    if isinstance(part, Fields):
        shown = [_part(Field(path), lang, markdown) for path in part.paths[:_SHOWN_FIELDS]]
        more = len(part.paths) - _SHOWN_FIELDS
        listed = join(lang, shown)
        return tr(lang, "seen.more", fields=listed, more=more) if more > 0 else listed
    if markdown:
        return markdown_code(part.text)
    safe = terminal_safe(part.text)
    return safe if isinstance(part, Name) else f"`{safe}`"
