"""What ``state push`` and ``state forget`` change, decided on values (no I/O).

``state push APP FILE`` is a compare-and-swap like any write: it replaces the stored state
only with a successor (same lineage, higher serial) unless ``--force``; a refusal says which
bot records the push would lose. ``state forget`` drops bot records in one write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from provisioner.errors import StateError
from provisioner.state.model import RecordedApp


@dataclass(frozen=True)
class PushDecision:
    """``write`` over the stored serial ``expected`` (``write`` None: nothing to do)."""

    write: RecordedApp | None
    expected: int
    forced: bool = False


def decide_push(
    app: str, where: str, stored: RecordedApp | None, pushed: RecordedApp, *, force: bool
) -> PushDecision:
    """How ``pushed`` replaces ``stored`` (None: nothing stored); StateError when it would
    lose something and ``force`` is not given."""
    if pushed.app != app:
        raise StateError(
            f"the file holds the state of app {pushed.app}, not of app {app}",
            hint=f"push it as `provisioner state push {pushed.app} FILE`",
        )
    if stored is None:
        return PushDecision(replace(pushed, serial=max(pushed.serial, 1)), 0)
    if stored.lineage == pushed.lineage and stored.serial < pushed.serial:
        return PushDecision(pushed, stored.serial)
    if stored.data == pushed.data:
        return PushDecision(None, stored.serial)
    if not force:
        raise _refusal(app, where, stored, pushed)
    # The stored history goes on (its lineage, the next serial) with the pushed content; the
    # document carries its own salt, so its fingerprints stay valid.
    replacement = replace(pushed, lineage=stored.lineage, serial=stored.serial + 1)
    return PushDecision(replacement, stored.serial, forced=True)


def lost_records(stored: RecordedApp, pushed: RecordedApp) -> list[str]:
    """The bot records of ``stored`` that ``pushed`` drops or records differently."""
    lost = []
    for user_id, bot in sorted(stored.bots.items()):
        other = pushed.bots.get(user_id)
        if other is None:
            lost.append(f"the record of {user_id}")
        elif other != bot:
            lost.append(f"the recorded changes of {user_id}")
    return lost


def _refusal(app: str, where: str, stored: RecordedApp, pushed: RecordedApp) -> StateError:
    if stored.lineage != pushed.lineage:
        why = f"it is another history (lineage {pushed.lineage}, stored {stored.lineage})"
    elif stored.serial == pushed.serial:
        why = f"it differs from the stored state of the same serial {stored.serial}"
    else:
        why = f"it is older (serial {pushed.serial}, stored serial {stored.serial})"
    lost = lost_records(stored, pushed)
    what = ", ".join(lost) if lost else "no bot record, only the stored serial's history"
    return StateError(
        f"refusing to push this state of app {app} to {where}: {why}; pushing it would lose {what}",
        hint=f"compare with `provisioner state pull {app}`; pass --force to replace the stored"
        " state anyway",
    )


def forget_bots(state: RecordedApp, user_ids: tuple[str, ...]) -> RecordedApp:
    """``state`` without the records of ``user_ids`` (serial + 1); StateError for an id
    that is not recorded."""
    unknown = [user_id for user_id in user_ids if user_id not in state.bots]
    if unknown:
        recorded = ", ".join(sorted(state.bots)) or "none"
        raise StateError(
            f"app {state.app} records no bot {', '.join(unknown)} (recorded: {recorded})",
            hint="`provisioner state show APP` lists the recorded bots; nothing was changed",
        )
    return state.without_bots(user_ids)
