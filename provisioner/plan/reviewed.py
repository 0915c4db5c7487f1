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
class BotDecision:
    """What the apply does with one bot, why, and what to do next (refusals)."""

    user_id: str
    outcome: Outcome
    reason: str = ""
    hint: str | None = None
    change: Change | None = None
    """The change to carry out (``make``, ``record``, ``forget``)."""


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
        return BotDecision(user_id, "done", "already as declared")
    if review.action == "delete":
        return _delete(change, drift)
    if change.action == "adopt":
        return _adopt(change)
    if change.action == "create" and drift is not None:  # deleted on the server outside git
        what = "deleted on the server outside git"
        return _drifted(change, revert, what, "creating it again would revert a deletion")
    if change.action == "update":
        return _update(review, change, drift, revert)
    return BotDecision(user_id, "make", change.action, change=change)


def _changed_since(review: BotReview, digest: str | None) -> BotDecision:
    now = "is no longer declared" if digest is None else "is not the one reviewed"
    if review.digest is None:
        now = "is declared again"
    return BotDecision(
        review.user_id,
        "refuse",
        f"its manifest {now} (changed after the review, by a later push or another change)",
        hint="review it again: push to a pull request (or open one) so its plan shows the"
        " current manifest, then merge it",
    )


def _delete(change: Change, drift: Drift | None) -> BotDecision:
    if change.action != "delete":  # pragma: no cover - a reviewed delete is not declared
        return BotDecision(change.user_id, "make", change.action, change=change)
    if drift is not None and drift.kind == "missing":
        return BotDecision(change.user_id, "forget", "already gone from the server", change=change)
    return BotDecision(change.user_id, "make", "delete", change=change)


def _adopt(change: Change) -> BotDecision:
    if not change.fields:
        return BotDecision(change.user_id, "make", "adopt", change=change)
    paths = ", ".join(f"`{diff.path}`" for diff in change.fields)
    return BotDecision(
        change.user_id,
        "refuse",
        f"a bot with this userId is already on the server with another spec ({paths} differ):"
        " a bot the review did not know",
        hint="declare it as the server holds it to adopt it (`provisioner export` writes its"
        " manifest), or give your bot another userId",
    )


def _update(review: BotReview, change: Change, drift: Drift | None, revert: bool) -> BotDecision:
    if drift is None:
        return BotDecision(change.user_id, "make", _with_rotations("update", change), change=change)
    if _server_as_declared(change, drift):
        record = replace(change, action="adopt", fields=())
        return BotDecision(change.user_id, "record", "already as declared", change=record)
    if review.action in ("create", "adopt"):  # the review set every field
        return BotDecision(change.user_id, "make", "update", change=change)
    outside = [diff.path for diff in drift.fields if not covered(diff.path, review.fields)]
    if not outside:
        return BotDecision(change.user_id, "make", "update", change=change)
    where = ", ".join(f"`{path}`" for path in outside)
    what = f"drifted on the server in {where}, which this change does not set"
    return _drifted(change, revert, what, "applying it would revert a change")


def _drifted(change: Change, revert: bool, what: str, undoing: str) -> BotDecision:
    """A reviewed change that would revert drift: refused, or made (``drift: revert``)."""
    if revert:
        reason = f"{change.action}; reverted: {what} (the app says drift: revert)"
        return BotDecision(change.user_id, "make", reason, change=change)
    return BotDecision(
        change.user_id,
        "refuse",
        f"{what}: {undoing} nobody reviewed",
        hint="accept the server's version (change the manifest to match it in a pull"
        " request), or revert it through the pending plan (`github apply --pending`);"
        " `drift: revert` in app.yaml makes merges revert such drift",
    )


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


def _with_rotations(what: str, change: Change) -> str:
    """``what``, naming the secrets rotated outside git that the change also sets."""
    rotated = rotated_references(change)
    return f"{what}; also a secret changed outside git: {', '.join(rotated)}" if rotated else what


def rotated_references(change: Change) -> list[str]:
    """The ``${NAME}`` references whose value changed while the reference did not."""
    return sorted({str(diff.new[TEMPLATE_KEY]) for diff in change.fields if diff.secret_rotated})


def _left(change: Change | None, drift: Drift | None, user_id: str) -> BotDecision:
    if change is not None and drift is None and change.action == "update":
        rotated = rotated_references(change)
        if rotated and len(rotated) == len(change.fields):
            return BotDecision(
                user_id,
                "leave",
                f"a secret changed outside git: {', '.join(rotated)} (the reference is the"
                " same, the value is not); this merge did not change the bot",
                hint="apply the rotation through the drift issue's pending plan (`github apply"
                " --pending ISSUE`: the dispatch workflow, in the protected environment)",
            )
    if change is None or (drift is not None and _drift_only(change, drift)):
        what = "deleted" if drift is not None and drift.kind == "missing" else "changed"
        return BotDecision(
            user_id,
            "leave",
            f"{what} on the server outside git; this merge did not change it",
            hint="see the drift issue: accept it (change the manifest in a pull request) or"
            " revert it (`github apply --pending ISSUE`)",
        )
    return BotDecision(
        user_id,
        "leave",
        f"has an unapplied change ({change.action}) that this merge did not review",
        hint="it belongs to the review that showed it: apply that review's pending plan"
        " (`github apply --pending N`), or review it again in a pull request",
    )


def _drift_only(change: Change, drift: Drift) -> bool:
    """The bot's change only undoes its drift (git did not change it)."""
    if drift.kind == "missing":
        return change.action == "create"
    return {diff.path for diff in change.fields} <= {diff.path for diff in drift.fields}
