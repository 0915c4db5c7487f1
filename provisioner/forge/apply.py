"""`github apply` and `gitlab apply`: make, bot by bot, the changes a merged review reviewed.

Every app the review recorded is planned again with a refresh, under its lock, by the skeleton
`provisioner apply` runs too (:func:`provisioner.apply.run.apply_apps`), with this command's
rule (:func:`reviewed_rule`): :func:`provisioner.plan.reviewed.decide_bots` decides per bot
whether its reviewed change is made, and in which form the server now needs (create, adopt,
update, already as declared, forgotten), or refused, and why. Bots the pull request did not
change are never written. The safety rules apply to the changes that are made: a protected
bot is not deleted, an app is not emptied without ``--allow-empty``.

Nothing here prints: what the command shows goes through a
:class:`~provisioner.apply.run.Printer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from provisioner.apply.run import ApplyRun, Printer, ReviewRule, apply_apps
from provisioner.apply.session import Applied, Selection
from provisioner.apply.verdicts import BotVerdicts, Review, Select, Verdict, blocked_error
from provisioner.errors import PlanError, ProvisionerError, UnsafePlanError
from provisioner.forge.comment import PlanData, ReviewedApp
from provisioner.forge.outcome import (
    AppOutcome,
    BotOutcome,
    say_hint,
    say_reason,
)
from provisioner.forge.wording import GITHUB, Wording
from provisioner.models import DesiredApp
from provisioner.plan import Change, Plan
from provisioner.plan.make import EMPTYING
from provisioner.plan.reviewed import BotDecision, Reason, decide_bots
from provisioner.render.markdown import render_markdown
from provisioner.render.texts import DEFAULT_LANG, Lang, tr
from provisioner.workspace import LoadedApp

COMMAND = "provisioner github apply"
"""What the lock holder record names (``command`` of :func:`apply_reviewed`)."""
FORGOTTEN = "already gone from the server; forgotten from the state without a call"


def reviewed_rule(
    data: PlanData | None, desired: Mapping[str, DesiredApp], wording: Wording = GITHUB
) -> ReviewRule:
    """The changes the pull request reviewed, bot by bot (``data``: its plan comment's
    record; ``desired``: the apps of the commit being applied; ``wording``: the forge, whose
    words the refusals use); without a review (``--auto-approve``), any unblocked plan."""
    if data is None:
        return ReviewRule()
    return ReviewRule(select=_selector(data, desired, wording), carries=data.plan_ids)


def _selector(data: PlanData, desired: Mapping[str, DesiredApp], wording: Wording) -> Select:
    records = {app.app: app for app in data.apps}

    def select(plan: Plan) -> BotVerdicts | ProvisionerError:
        record = records.get(plan.app)
        if record is None or plan.app not in desired:
            return PlanError(f"app {plan.app} was not in the plan reviewed on this merge")
        if data.changes_omitted:
            return PlanError(
                f"the review of app {plan.app} did not record its changes per bot (the plan"
                " comment had no room for them)",
                hint="apply it through the pending plan posted with this outcome"
                f" (`{wording.command} apply --pending N`), or split the apps over several plan"
                " workflows",
            )
        return select_bots(record, plan, desired[plan.app], wording)

    return select


def select_bots(
    record: ReviewedApp, plan: Plan, app: DesiredApp, wording: Wording = GITHUB
) -> BotVerdicts | UnsafePlanError:
    """What of ``plan`` the review ``record`` lets through (see the module docstring)."""
    revert = app.settings.drift == "revert"
    decisions = decide_bots(record.reviews, plan, app, revert_drift=revert)
    decisions = [_protected(decision) for decision in decisions]
    chosen = [d.change for d in decisions if d.change is not None and _carried_out(d)]
    if _empties(plan, chosen):
        return blocked_error(plan)
    forgotten = {d.user_id: FORGOTTEN for d in decisions if d.outcome == "forget"}
    refused: dict[str, ProvisionerError] = {
        d.user_id: _refusal(plan.app, d, wording) for d in decisions if d.outcome == "refuse"
    }
    selection = Selection(replace(plan, changes=tuple(chosen)), forgotten)
    return BotVerdicts(selection, refused, tuple(decisions))


def _empties(plan: Plan, chosen: Sequence[Change]) -> bool:
    """The changes carried out delete every managed bot (the plan was blocked for it)."""
    deletes = sum(1 for change in chosen if change.action == "delete")
    emptying = any(reason.startswith(EMPTYING) for reason in plan.blocked)
    return emptying and deletes == sum(1 for change in plan.changes if change.action == "delete")


def _carried_out(decision: BotDecision) -> bool:
    return decision.outcome in ("make", "record", "forget")


def _protected(decision: BotDecision) -> BotDecision:
    """A reviewed delete of a protected bot is refused (the safety rule, per bot)."""
    change = decision.change
    if decision.outcome != "make" or change is None or change.action != "delete":
        return decision
    if not change.protect:
        return decision
    return BotDecision(decision.user_id, "refuse", Reason("protected"), hint="protected")


def _refusal(app: str, decision: BotDecision, wording: Wording) -> ProvisionerError:
    """The refusal as the job log says it (English, like every CLI message)."""
    reason = say_reason(decision.reason, wording=wording)
    message = f"app {app}: bot {decision.user_id} refused: {reason}"
    hint = say_hint(decision.hint, wording=wording) if decision.hint else None
    if decision.reason.key == "protected":
        return UnsafePlanError(message, hint=hint)
    return PlanError(message, hint=hint)


class ReviewedApply(ApplyRun):
    """What `github apply` did (an :class:`ApplyRun`), as the pull request and the job see it."""

    def outcomes(self) -> list[AppOutcome]:
        """One row per app, in the order of the command line."""
        applied = {each.app: each for each in self.applied}
        return [app_outcome(verdict, applied.get(name)) for name, verdict in self.verdicts.items()]

    def plans_markdown(self, limit: int, lang: Lang = DEFAULT_LANG) -> str:
        """The plans the apps made before deciding (each with its refusals, in the outcome),
        within ``limit``."""
        if not self.docs:
            return ""
        plans = render_markdown(self.docs, limit=limit, lang=lang)
        return tr(lang, "apply.plans_heading") + plans

    @property
    def needs_review(self) -> list[str]:
        """The apps with a refused app or bot: what a pending plan is posted for."""
        return [
            name
            for name, verdict in self.verdicts.items()
            if verdict.plan is not None
            and (verdict.refusal is not None or (verdict.bots and verdict.bots.refused))
        ]


def app_outcome(verdict: Verdict, applied: Applied | None) -> AppOutcome:
    """One app's row: refused, failed, or its counts, and a row per bot that was decided."""
    bots = _bot_outcomes(verdict, applied)
    if verdict.refusal is not None:
        return AppOutcome(verdict.name, refused=verdict.refusal.message, bots=bots)
    if applied is None or (applied.result is None and applied.error is None):
        return AppOutcome(verdict.name, bots=bots)
    if applied.error is not None:
        return AppOutcome(verdict.name, message=applied.error.message, bots=bots)
    result = applied.result
    assert result is not None
    failures = [item.error for item in result.results if item.error is not None]
    problem = result.persist_error or (failures[0] if failures else None)
    return AppOutcome(
        verdict.name,
        counts=result.counts,
        message=problem.message if problem else None,
        bots=bots,
    )


def _bot_outcomes(verdict: Verdict, applied: Applied | None) -> tuple[BotOutcome, ...]:
    if verdict.bots is None:
        return ()
    results = {}
    if applied is not None and applied.result is not None:
        results = {item.user_id: item for item in applied.result.results}
    rows = []
    for decision in verdict.bots.decisions:
        result = results.get(decision.user_id)
        rows.append(
            BotOutcome(
                decision.user_id,
                decision.outcome,
                decision.reason,
                decision.hint,
                result.outcome if result is not None else None,
                result.error.message if result is not None and result.error else None,
            )
        )
    return tuple(rows)


def apply_reviewed(
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    data: PlanData | None,
    *,
    allow_empty: bool,
    concurrency: int,
    show: Printer,
    command: str = COMMAND,
    wording: Wording = GITHUB,
) -> ReviewedApply:
    """Plan (refresh, lock) and apply the apps a review recorded, bot by bot; without a
    review (``--auto-approve``), every loaded app's current plan, when unblocked."""
    if data is not None:
        reviewed = {app.app for app in data.apps if app.changes or data.changes_omitted}
        loaded = [each for each in loaded if each.name in reviewed]
    desired = {each.app.name: each.app for each in loaded if each.app is not None}
    run = apply_apps(
        loaded,
        env,
        reviewed_rule(data, desired, wording),
        show,
        refresh=True,
        allow_empty=allow_empty,
        concurrency=concurrency,
        command=command,
    )
    return ReviewedApply(run.verdicts, run.applied, run.code, run.closing)


def apply_pending(
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    plan_ids: Mapping[str, str],
    *,
    allow_empty: bool,
    concurrency: int,
    show: Printer,
    command: str = COMMAND,
    wording: Wording = GITHUB,
) -> ReviewedApply:
    """Plan (refresh, lock) and apply the apps of a pending plan (app → plan id), each only
    when its fresh plan is exactly the pending one (a human saw it; nothing else is applied)."""
    loaded = [each for each in loaded if each.name in plan_ids]
    run = apply_apps(
        loaded,
        env,
        ReviewRule(review=_exactly(plan_ids, wording)),
        show,
        refresh=True,
        allow_empty=allow_empty,
        concurrency=concurrency,
        command=command,
    )
    return ReviewedApply(run.verdicts, run.applied, run.code, run.closing)


def _exactly(plan_ids: Mapping[str, str], wording: Wording) -> Review:
    dispatch = wording.terms(Lang.EN)["dispatch"]

    def review(plan: Plan) -> PlanError | None:
        if plan.is_empty:  # nothing left to do: no call would be made
            return None
        pending = plan_ids[plan.app]
        if plan.id == pending:
            return None
        return PlanError(
            f"the plan for app {plan.app} is no longer the pending one (pending"
            f" {pending[:12]}, now {plan.id[:12]}): something changed since it was posted",
            hint="nothing was changed for this app; review the new pending plan posted with"
            f" this outcome, then run {dispatch} again",
        )

    return review
