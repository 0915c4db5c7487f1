"""Deciding per app before any call, and the outcome of a whole run. Pure values.

Apps are independent: an app that could not be loaded or planned, whose plan a safety rule
blocks, or whose plan is not the reviewed one is refused on its own; the others go on. The
outcome of a run over several apps is the worst app outcome, in the order 130/143
interrupted, 4 partial apply, 1 error or refused, 3 blocked, 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from provisioner.apply.session import Applied, Planned, Selection
from provisioner.errors import ApplyError, PlanError, ProvisionerError, UnsafePlanError
from provisioner.exit_codes import EXIT_PARTIAL, interrupted_exit_code, worst
from provisioner.plan import Plan
from provisioner.plan.reviewed import BotDecision

Review = Callable[[Plan], PlanError | None]
"""Why a plan may not be applied as reviewed (None: it is the reviewed one)."""


@dataclass(frozen=True)
class BotVerdicts:
    """A review per bot of one app's plan: the part it applies (``selection``), the bots it
    refuses (userId → why, with what to do) and every bot's decision, for the outcome."""

    selection: Selection
    refused: Mapping[str, ProvisionerError]
    decisions: Sequence[BotDecision]


Select = Callable[[Plan], "BotVerdicts | ProvisionerError"]
"""A review per bot: what of a plan may be applied, or why none of it may."""


@dataclass(frozen=True)
class Verdict:
    """One app before any call: its plan (when it planned) and why it may not apply."""

    name: str
    plan: Plan | None
    refusal: ProvisionerError | None
    bots: BotVerdicts | None = None
    """The review per bot, when the rule decides per bot."""

    @property
    def applying(self) -> Plan | None:
        """What the app applies: its plan, or the part a review per bot selected."""
        return self.bots.selection.plan if self.bots is not None else self.plan

    @property
    def ready(self) -> bool:
        """Planned, allowed, and with something to do."""
        plan = self.applying
        return self.refusal is None and plan is not None and not plan.is_empty


def decide(
    names: Sequence[str],
    load_errors: Mapping[str, ProvisionerError],
    planned: Sequence[Planned],
    review: Review | None = None,
    select: Select | None = None,
) -> dict[str, Verdict]:
    """Every app of ``names``, in order: refused when it could not be loaded
    (``load_errors``) or planned, when a safety rule blocks its plan, or when ``review``
    refuses it (a plan that is not the reviewed one). With ``select`` (a review per bot),
    the app applies what it selects; the safety rules are then the selection's to apply, to
    the changes it makes."""
    plans = {each.app.name: each for each in planned}
    verdicts: dict[str, Verdict] = {}
    for name in names:
        outcome = plans.get(name)
        plan = outcome.plan if outcome is not None else None
        refusal = load_errors.get(name) or (outcome.error if outcome is not None else None)
        if plan is not None and select is not None:
            verdicts[name] = _selected(name, plan, select(plan))
            continue
        if plan is not None and plan.is_blocked:
            refusal = blocked_error(plan)
        elif plan is not None and review is not None:
            refusal = review(plan)
        verdicts[name] = Verdict(name, plan, refusal)
    return verdicts


def blocked_error(plan: Plan) -> UnsafePlanError:
    """Why a blocked plan is not applied."""
    return UnsafePlanError(
        f"the plan for app {plan.app} is blocked: " + "; ".join(plan.blocked),
        hint="see the plan output for the rule and how to lift it",
    )


def _selected(name: str, plan: Plan, selected: BotVerdicts | ProvisionerError) -> Verdict:
    if isinstance(selected, ProvisionerError):
        return Verdict(name, plan, selected)
    return Verdict(name, plan, None, selected)


@dataclass(frozen=True)
class RunOutcome:
    """The exit status of a run, and the closing error to print (None: all went well)."""

    code: int
    closing: ProvisionerError | None = None


def run_outcome(
    verdicts: Mapping[str, Verdict], applied: Sequence[Applied], stop: str | None
) -> RunOutcome:
    """The worst app outcome of a run (see the module docstring), with its closing error."""
    codes = [verdict.refusal.exit_code for verdict in verdicts.values() if verdict.refusal]
    codes += [
        error.exit_code
        for verdict in verdicts.values()
        if verdict.bots is not None
        for error in verdict.bots.refused.values()
    ]
    codes += [each.error.exit_code for each in applied if each.error is not None]
    results = [each.result for each in applied if each.result is not None]
    failed = sum(result.counts["failed"] for result in results)
    skipped = sum(result.counts["not_attempted"] for result in results)
    unsaved = [result for result in results if result.persist_error is not None]
    if stop is not None:
        return RunOutcome(
            interrupted_exit_code(stop),
            ProvisionerError(
                f"interrupted: calls in flight finished and were recorded; {skipped} change(s)"
                " not attempted",
                hint="re-run `provisioner apply` to finish",
            ),
        )
    if not (failed or skipped or unsaved):
        return RunOutcome(worst(codes))
    not_saved = f"; the state of {len(unsaved)} app(s) was not saved" if unsaved else ""
    return RunOutcome(
        worst([*codes, EXIT_PARTIAL]),
        ApplyError(
            f"apply incomplete: {failed} failed, {skipped} not attempted{not_saved}",
            hint="the state holds exactly what was applied; fix the errors above and re-run"
            " `provisioner apply` to converge",
        ),
    )
