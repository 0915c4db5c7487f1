"""Why an app's plan at apply time is not the one reviewed on its pull request. Pure.

``github apply`` re-plans every app with a refresh under its lock and applies it only when
the fresh plan id is the reviewed one. When it is not, the pull request and the job summary
must say what moved, from what the plan comment recorded (``ReviewedApp``: plan id, state
lineage and serial, changes as action + userId + field paths) and the fresh plan document:

- the state moved (another apply wrote it: serial 12 -> 14, and the run that wrote it last);
- the state was replaced (another lineage);
- changes added, gone, or touching other fields than reviewed;
- a secret changed outside git (its reference is the same, its value is not): named by its
  variable, never by its value;
- drift found by the refresh (bots changed or deleted on the server since the review).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from provisioner.github.comment import ReviewedApp, ReviewedChange
from provisioner.plan.document import ChangeDoc, DriftDoc, PlanDoc, PlanStateDoc
from provisioner.secrets import is_sensitive_value

_SHOWN = 5
"""Items named per kind of difference; the rest are counted."""

ChangeKey = tuple[str, str]


def explain_difference(reviewed: ReviewedApp, doc: PlanDoc, changes_known: bool) -> str:
    """What differs between the reviewed plan of an app and its fresh plan ``doc``
    (``Plan.document``), as one sentence of ``;``-separated parts. ``changes_known`` is
    False when the comment left its change lists out (they did not fit)."""
    parts = _state_parts(reviewed, doc["state"])
    if changes_known:
        parts += _change_parts(reviewed.changes, doc["changes"])
    else:
        parts.append("the comment did not list the reviewed changes (they did not fit)")
    rotated = sorted(set(rotated_secrets(doc["changes"])))
    if rotated:
        parts.append(
            "a secret changed outside git: " + _listed(rotated) + " (the reference is the same,"
            " the value is not)"
        )
    parts += _drift_parts(doc["drift"])
    if not parts:
        parts.append(
            "the new values differ from the reviewed ones (the comment records field names only)"
        )
    return "; ".join(parts)


def _state_parts(reviewed: ReviewedApp, state: PlanStateDoc) -> list[str]:
    run = state.get("last_run")
    by = f" in run {run}" if run else ""
    if reviewed.lineage is not None and state["lineage"] not in (None, reviewed.lineage):
        return [f"the state was replaced (another lineage) since the review{by}"]
    if reviewed.serial != state["serial"]:
        return [f"state moved from serial {reviewed.serial} to {state['serial']}{by}"]
    return []


def _change_parts(reviewed: Sequence[ReviewedChange], current: Sequence[ChangeDoc]) -> list[str]:
    before = {(change.action, change.user_id): tuple(change.fields) for change in reviewed}
    now = {
        (change["action"], change["user_id"]): tuple(field["path"] for field in change["fields"])
        for change in current
    }
    parts = []
    added = [key for key in now if key not in before]
    gone = [key for key in before if key not in now]
    other = [key for key in now if key in before and now[key] != before[key]]
    if added:
        parts.append("changes added: " + _listed(_named(key) for key in added))
    if gone:
        parts.append("changes gone: " + _listed(_named(key) for key in gone))
    if other:
        parts.append(
            "changes touching other fields: "
            + _listed(f"{_named(key)} ({', '.join(now[key]) or '-'})" for key in other)
        )
    return parts


def rotated_secrets(changes: Sequence[ChangeDoc]) -> Iterable[str]:
    """The ``${NAME}`` references whose value changed while the reference did not."""
    for change in changes:
        for field in change["fields"]:
            old, new = field.get("old"), field.get("new")
            if (
                is_sensitive_value(old)
                and is_sensitive_value(new)
                and old.get("template")
                and old.get("template") == new.get("template")
                and old.get("sensitive") != new.get("sensitive")
            ):
                yield str(new["template"])


def _drift_parts(drift: Sequence[DriftDoc]) -> list[str]:
    if not drift:
        return []
    names = [
        f"{item['user_id']} ({'deleted' if item['kind'] == 'missing' else 'changed'})"
        for item in drift
    ]
    return ["drift found on the server since the review: " + _listed(names)]


def _named(key: ChangeKey) -> str:
    action, user_id = key
    return f"{action} {user_id}"


def _listed(items: Iterable[str]) -> str:
    shown = list(items)
    head = ", ".join(shown[:_SHOWN])
    return head + (f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else "")
