"""The reviewed change per bot: what a review recorded, and what an apply may do with it.

Pure; forge-independent (GitHub's comment data block and GitLab's note carry the same record).

A review records, per bot its plan shows a change for (relative to the recorded state,
exactly what the reviewer saw): the change (create, update with its field paths, delete)
and a digest of the **desired spec** the reviewed commit declares for that bot — its manifest
in canonical form with secrets by reference name only (``${NAME}`` as written), so a job
without secrets computes the same digest. A delete's digest is ``None``: the bot is absent.

At apply time the app is planned again with a refresh, and :func:`decide_bots` decides per
bot, against the desired spec of the merge commit:

=========================================  ===============================================
the reviewed bot now                        the apply
=========================================  ===============================================
desired spec is not the reviewed one        refused (a later push or another change)
create/update, the server needs it          made (create, update)
create, the server holds exactly that spec  adopted: recorded, no call
server already as declared                  recorded, no call ("already as declared")
create, the server holds another spec       refused: a bot the review did not know
drifted in fields the change does not set   refused (``drift: revert``: reverted, said so)
deleted on the server outside git           refused (``drift: revert``: created again)
delete, the bot is already gone             forgotten from the state, no call
=========================================  ===============================================

Bots the review did not change are never written: their drift belongs to the drift issue,
their unapplied changes to the review that showed them. The state having moved since the
review is no refusal by itself, so a second merge, or a re-run after a partial apply, falls
out of the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from provisioner.models import DesiredApp
from provisioner.plan.canonical import bot_digest
from provisioner.plan.changes import Change, Drift, Plan
from provisioner.secrets import TEMPLATE_KEY

Outcome = Literal["make", "record", "forget", "done", "refuse", "leave"]
"""What the apply does with one bot: ``make`` the change (a call, or an adoption); ``record``
a server already as declared (no call); ``forget`` a deleted bot already gone (no call);
``done`` nothing left; ``refuse`` the reviewed change; ``leave`` a bot the review did not
change."""


@dataclass(frozen=True)
class BotReview:
    """One reviewed change: ``action`` and ``fields`` as the plan showed them, ``digest`` of
    the desired spec (None for a delete), ``source`` the manifest file (to name who changed
    it later)."""

    user_id: str
    action: str
    fields: tuple[str, ...] = ()
    digest: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Reason:
    """Why, as data: a key of the review texts' catalog (``bot.KEY``; ``made…`` names the
    change made, ``record``, ``forget`` and ``done`` the outcome's own texts) and its values.
    The words are the renderer's (``provisioner.forge.outcome.say_reason``), in the
    reviewer's language and the forge's terms; nothing here is English."""

    key: str
    action: str = ""
    """The change (``create``, ``update``, ``delete``, ``adopt``)."""
    fields: tuple[str, ...] = ()
    """Field paths (drifted, or differing from the server)."""
    names: tuple[str, ...] = ()
    """``${NAME}`` references (a secret rotated outside git)."""


DONE = Reason("done")
"""Nothing left to do."""


@dataclass(frozen=True)
class BotDecision:
    """What the apply does with one bot, why, and what to do next (refusals: ``hint``, a key
    of the catalog, ``bot.hint.KEY``)."""

    user_id: str
    outcome: Outcome
    reason: Reason = DONE
    hint: str | None = None
    change: Change | None = None
    """The change to carry out (``make``, ``record``, ``forget``)."""


def _made(change: Change) -> Reason:
    return Reason("made", change.action)


def desired_digests(app: DesiredApp) -> dict[str, str]:
    """userId → digest of every bot the app declares."""
    return {bot.userId: bot_digest(bot) for bot in app.bots}


def reviews_of(plan: Plan, app: DesiredApp) -> tuple[BotReview, ...]:
    """The review record of ``plan``: one entry per bot it shows a change for."""
    return tuple(
        BotReview(
            user_id=change.user_id,
            action=change.action,
            fields=tuple(diff.path for diff in change.fields),
            digest=change.digest,
            source=change.source or app.sources.get(change.user_id),
        )
        for change in plan.changes
    )


def decide_bots(
    reviews: Sequence[BotReview],
    plan: Plan,
    app: DesiredApp,
    *,
    revert_drift: bool = False,
) -> list[BotDecision]:
    """Per bot: each reviewed bot (in review order), then each bot ``plan`` shows a change or
    drift for that the review did not change (``leave``). ``plan``: the app planned again
    with a refresh; ``app``: the manifests of the commit being applied."""
    digests = desired_digests(app)
    changes = {change.user_id: change for change in plan.changes}
    drift = {found.user_id: found for found in plan.drift}
    decisions = [
        _decide(
            review,
            digests.get(review.user_id),
            changes.get(review.user_id),
            drift.get(review.user_id),
            revert_drift,
        )
        for review in reviews
    ]
    reviewed = {review.user_id for review in reviews}
    for user_id in sorted((set(changes) | set(drift)) - reviewed):
        decisions.append(_left(changes.get(user_id), drift.get(user_id), user_id))
    return decisions


def _decide(
    review: BotReview,
    digest: str | None,
    change: Change | None,
    drift: Drift | None,
    revert: bool,
) -> BotDecision:
    user_id = review.user_id
    if digest != review.digest:
        return _changed_since(review, digest)
    if change is None:
        return BotDecision(user_id, "done", DONE)
    if review.action == "delete":
        return _delete(change, drift)
    if change.action == "adopt":
        return _adopt(change)
    if change.action == "create" and drift is not None:  # deleted on the server outside git
        return _drifted(change, revert, "deleted")
    if change.action == "update":
        return _update(review, change, drift, revert)
    return BotDecision(user_id, "make", _made(change), change=change)


def _changed_since(review: BotReview, digest: str | None) -> BotDecision:
    now = "gone" if digest is None else "stale"
    if review.digest is None:
        now = "again"
    return BotDecision(review.user_id, "refuse", Reason(f"changed.{now}"), hint="review_again")


def _delete(change: Change, drift: Drift | None) -> BotDecision:
    if change.action != "delete":  # pragma: no cover - a reviewed delete is not declared
        return BotDecision(change.user_id, "make", _made(change), change=change)
    if drift is not None and drift.kind == "missing":
        return BotDecision(change.user_id, "forget", Reason("forget"), change=change)
    return BotDecision(change.user_id, "make", _made(change), change=change)


def _adopt(change: Change) -> BotDecision:
    if not change.fields:
        return BotDecision(change.user_id, "make", _made(change), change=change)
    paths = tuple(diff.path for diff in change.fields)
    return BotDecision(change.user_id, "refuse", Reason("taken", fields=paths), hint="adopt")


def _update(review: BotReview, change: Change, drift: Drift | None, revert: bool) -> BotDecision:
    if drift is None:
        return BotDecision(change.user_id, "make", _with_rotations(change), change=change)
    if _server_as_declared(change, drift):
        record = replace(change, action="adopt", fields=())
        return BotDecision(change.user_id, "record", Reason("record"), change=record)
    if review.action in ("create", "adopt"):  # the review set every field
        return BotDecision(change.user_id, "make", _made(change), change=change)
    outside = tuple(diff.path for diff in drift.fields if not covered(diff.path, review.fields))
    if not outside:
        return BotDecision(change.user_id, "make", _made(change), change=change)
    return _drifted(change, revert, "drifted", outside)


def _drifted(
    change: Change, revert: bool, how: Literal["deleted", "drifted"], fields: tuple[str, ...] = ()
) -> BotDecision:
    """A reviewed change that would revert drift (``deleted`` on the server, or ``drifted``
    in ``fields``): refused, or made (``drift: revert``)."""
    if revert:
        reason = Reason(f"made.reverted_{how}", change.action, fields)
        return BotDecision(change.user_id, "make", reason, change=change)
    reason = Reason(f"{how}_outside", change.action, fields)
    return BotDecision(change.user_id, "refuse", reason, hint="drift")


def _server_as_declared(change: Change, drift: Drift) -> bool:
    """The server already holds the desired spec, only the record differs: the drift
    (recorded → live) and the change (recorded → desired) set the same fields to the same
    values."""
    wanted = {diff.path: diff.new for diff in change.fields if diff.path != "protect"}
    found = {diff.path: diff.new for diff in drift.fields}
    return bool(wanted) and wanted == found


def covered(path: str, fields: Sequence[str]) -> bool:
    """``path`` is one of ``fields`` or lies inside (or around) one of them: the rule that
    tells drift a reviewed change sets from drift it does not."""
    return any(
        path == field
        or path.startswith((f"{field}.", f"{field}["))
        or field.startswith((f"{path}.", f"{path}["))
        for field in fields
    )


def _with_rotations(change: Change) -> Reason:
    """The change made, naming the secrets rotated outside git that it also sets."""
    rotated = tuple(rotated_references(change))
    return Reason("made.rotated", change.action, names=rotated) if rotated else _made(change)


def rotated_references(change: Change) -> list[str]:
    """The ``${NAME}`` references whose value changed while the reference did not."""
    return sorted({str(diff.new[TEMPLATE_KEY]) for diff in change.fields if diff.secret_rotated})


def _left(change: Change | None, drift: Drift | None, user_id: str) -> BotDecision:
    if change is not None and drift is None and change.action == "update":
        rotated = tuple(rotated_references(change))
        if rotated and len(rotated) == len(change.fields):
            return BotDecision(user_id, "leave", Reason("rotated", names=rotated), hint="rotated")
    if change is None or (drift is not None and _drift_only(change, drift)):
        what = "deleted" if drift is not None and drift.kind == "missing" else "changed"
        return BotDecision(user_id, "leave", Reason(f"{what}_alone"), hint="drift_issue")
    reason = Reason("unapplied", change.action)
    return BotDecision(user_id, "leave", reason, hint="unapplied")


def _drift_only(change: Change, drift: Drift) -> bool:
    """The bot's change only undoes its drift (git did not change it)."""
    if drift.kind == "missing":
        return change.action == "create"
    return {diff.path for diff in change.fields} <= {diff.path for diff in drift.fields}
