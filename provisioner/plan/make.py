"""make_plan: desired × recorded × live → Plan; replacements paired, safety rules applied.
Pure: the environment and the live bots are passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from provisioner.errors import PlanError
from provisioner.models import Bot, DesiredApp
from provisioner.plan.canonical import bot_digest, canonical_live, canonical_spec, with_templates
from provisioner.plan.changes import Change, Drift, FieldDiff, Plan, Replacement, source_file
from provisioner.plan.diff import diff_specs
from provisioner.state.model import RecordedApp, RecordedBot

if TYPE_CHECKING:
    from provisioner.rongcloud.models import BotPayload

_Planned = tuple[Change | None, Drift | None]
"""A bot's change (None: as recorded) and its drift (None: none found, or no refresh)."""


def make_plan(
    desired: DesiredApp,
    recorded: RecordedApp,
    env: Mapping[str, str],
    live: Sequence[BotPayload] | None = None,
    *,
    allow_empty: bool = False,
    check_secrets: bool = True,
) -> Plan:
    """Compare what git declares, what was recorded and (with a refresh) what the server has.

    Pure. ``live`` is None without a refresh (no drift, no adopt, no unmanaged). A variable
    that is unset or empty raises ConfigError naming it — unless ``check_secrets`` is False
    (a plan without secrets): then it is listed in ``Plan.unchecked`` and each reference to
    it counts as unchanged where the state records the same reference. The plan is always
    made; safety rules only mark it ``blocked``.
    """
    _check_state_of(desired, recorded)
    live_by_id = {bot.userId: bot for bot in live} if live is not None else None
    unchecked: set[str] | None = None if check_secrets else set()
    planned = _planned_bots(desired, recorded, env, live_by_id, unchecked)
    changes = pair_replacements([change for change, _ in planned if change is not None], recorded)
    drift = [found for _, found in planned if found is not None]
    declared = {bot.userId for bot in desired.bots}
    return Plan(
        app=desired.name,
        changes=tuple(sorted(changes, key=lambda change: change.sort_key)),
        drift=tuple(sorted(drift, key=lambda item: item.user_id)),
        unmanaged=tuple(sorted(set(live_by_id or ()) - set(recorded.bots) - declared)),
        blocked=tuple(_blocked_reasons(desired.name, recorded, changes, allow_empty)),
        lineage=recorded.lineage,
        serial=recorded.serial,
        last_run=recorded.last_run,
        last_plan=recorded.last_plan,
        unchecked=tuple(sorted(unchecked or ())),
    )


def _check_state_of(desired: DesiredApp, recorded: RecordedApp) -> None:
    if desired.name != recorded.app:
        raise PlanError(
            f"the recorded state belongs to app {recorded.app}, not to app {desired.name}",
            hint="give each app its own state.path in its app.yaml",
        )


def _planned_bots(
    desired: DesiredApp,
    recorded: RecordedApp,
    env: Mapping[str, str],
    live_by_id: Mapping[str, BotPayload] | None,
    unchecked: set[str] | None,
) -> list[_Planned]:
    """Each declared bot's change and drift (in manifest order), then each recorded bot's
    that is no longer declared (its delete)."""
    declared = {bot.userId for bot in desired.bots}
    kept = [
        _with_digest(
            bot,
            _planned_bot(
                bot, desired.sources.get(bot.userId), recorded, env, live_by_id, unchecked
            ),
        )
        for bot in desired.bots
    ]
    gone = [
        _planned_delete(user_id, rec, live_by_id, recorded.salt)
        for user_id, rec in recorded.bots.items()
        if user_id not in declared
    ]
    return [*kept, *gone]


def _with_digest(bot: Bot, planned: _Planned) -> _Planned:
    """A declared bot's change carries the digest of its desired spec (what a review records)."""
    change, found = planned
    return (replace(change, digest=bot_digest(bot)) if change is not None else None), found


def _planned_bot(
    bot: Bot,
    source: str | None,
    recorded: RecordedApp,
    env: Mapping[str, str],
    live_by_id: Mapping[str, BotPayload] | None,
    unchecked: set[str] | None,
) -> _Planned:
    """The change for one declared bot (None when it is as recorded), and its drift."""
    salt = recorded.salt
    rec = recorded.bots.get(bot.userId)
    spec = rec.spec if rec is not None else None
    after = canonical_spec(bot, env, salt, recorded=spec, unchecked=unchecked)
    if rec is not None:
        upgraded = replace(rec, spec=with_templates(rec.spec, after))
        change, found = _planned_recorded(
            bot.userId, upgraded, after, bot.protect, live_by_id, salt
        )
        return (replace(change, source=source) if change is not None else None), found
    if live_by_id is not None and bot.userId in live_by_id:
        fields = diff_specs(canonical_live(live_by_id[bot.userId], salt, after), after)
        return Change("adopt", bot.userId, source, None, after, fields, protect=bot.protect), None
    return Change("create", bot.userId, source, None, after, protect=bot.protect), None


def _planned_recorded(
    user_id: str,
    rec: RecordedBot,
    after: dict[str, Any],
    protect: bool,
    live_by_id: Mapping[str, BotPayload] | None,
    salt: str,
) -> _Planned:
    """The change for a recorded, still declared bot, and its drift (with a refresh).

    The update's fields are what the call changes on the server (live -> desired when the
    server drifted, else recorded -> desired). When the server already matches the manifest
    but the record does not (changed by hand, or a state write was lost), the update shows
    recorded -> desired, so applying it brings the record up to date.
    """
    found = _drift_of(user_id, rec, live_by_id, salt)
    if found is not None and found.kind == "missing":
        return Change("create", user_id, None, None, after, protect=protect), found
    fields: tuple[FieldDiff, ...] = ()
    if found is not None and live_by_id is not None:
        fields = diff_specs(canonical_live(live_by_id[user_id], salt, rec.spec), after)
    if not fields:
        fields = diff_specs(rec.spec, after)
    fields = _with_protect(fields, rec.protect, protect)
    if not fields:
        return None, found
    return Change("update", user_id, None, rec.spec, after, fields, protect=protect), found


def _planned_delete(
    user_id: str, rec: RecordedBot, live_by_id: Mapping[str, BotPayload] | None, salt: str
) -> _Planned:
    """The delete of a recorded bot no longer declared, and its drift (with a refresh)."""
    change = Change("delete", user_id, None, rec.spec, None, protect=rec.protect)
    return change, _drift_of(user_id, rec, live_by_id, salt)


def _drift_of(
    user_id: str, rec: RecordedBot, live_by_id: Mapping[str, BotPayload] | None, salt: str
) -> Drift | None:
    if live_by_id is None:
        return None
    bot = live_by_id.get(user_id)
    if bot is None:
        return Drift(user_id, "missing")
    fields = diff_specs(rec.spec, canonical_live(bot, salt, rec.spec))
    return Drift(user_id, "changed", fields) if fields else None


def pair_replacements(changes: Sequence[Change], recorded: RecordedApp) -> list[Change]:
    """``changes`` with each delete of X and create of Y paired as a :class:`Replacement`
    when Y is not recorded and its manifest file is the one X was recorded from (``source``).
    Both changes stay, in their places; only their ``replacement`` is set."""
    creates_by_file: dict[str, Change] = {}
    for change in changes:
        name = source_file(change.source)
        if change.action == "create" and name and change.user_id not in recorded.bots:
            creates_by_file.setdefault(name, change)
    pairs: dict[str, Replacement] = {}
    for change in changes:
        rec = recorded.bots.get(change.user_id)
        if change.action != "delete" or rec is None or rec.source is None:
            continue
        create = creates_by_file.pop(rec.source, None)
        if create is not None and create.after is not None:
            fields = _with_protect(diff_specs(rec.spec, create.after), rec.protect, create.protect)
            pair = Replacement(change.user_id, create.user_id, fields)
            pairs[change.user_id] = pairs[create.user_id] = pair
    return [
        replace(change, replacement=pairs[change.user_id])
        if change.user_id in pairs and change.action in ("delete", "create")
        else change
        for change in changes
    ]


def _with_protect(
    fields: tuple[FieldDiff, ...], before: bool, after: bool
) -> tuple[FieldDiff, ...]:
    """``fields`` plus ``protect`` when it changes (the state records it; not an API field)."""
    return (*fields, FieldDiff("protect", before, after)) if before != after else fields


EMPTYING = "the plan deletes every managed bot"
"""How the safety rule against emptying an app starts its reason."""


def _blocked_reasons(
    app: str, recorded: RecordedApp, changes: Sequence[Change], allow_empty: bool
) -> list[str]:
    deletes = [change for change in changes if change.action == "delete"]
    emptying = [change for change in deletes if change.replacement is None]
    reasons = [
        f"{change.user_id} is protected (protect: true in state); set protect: false in a"
        " separate apply before deleting it"
        for change in sorted(deletes, key=lambda change: change.user_id)
        if change.protect
    ]
    if recorded.bots and len(emptying) == len(recorded.bots) and not allow_empty:
        reasons.append(
            f"{EMPTYING} of app {app} ({len(deletes)}); pass --allow-empty if that is intended"
        )
    return reasons
