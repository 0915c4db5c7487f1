"""`github apply`: apply, app by app, exactly what a merged pull request reviewed.

Every app is re-planned with a refresh under its lock by the skeleton `provisioner apply`
runs too (:func:`provisioner.apply.run.apply_apps`), with this command's rule
(:func:`reviewed_rule`): :func:`review_against` refuses an app whose fresh plan id is not
the reviewed one, saying what differs (:mod:`provisioner.github.explain`); the others apply.
An app with nothing left to do is never refused (no call would be made).

A re-run after an apply of the reviewed plan stopped part way (a failed call, a lost runner)
must finish the job, although the state moved: it carries on when the state's last write was
made applying this very plan (``last_plan``), nothing drifted, and every change left is one
of the reviewed changes (a create the first run made may come back as an adoption). Its
writes are stamped with the reviewed id again, so a further re-run carries on too; a write by
any other plan in between stops that. Nothing here prints: what the command shows goes
through a :class:`~provisioner.apply.run.Printer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from provisioner.apply.run import ApplyRun, Printer, ReviewRule, apply_apps
from provisioner.apply.session import Applied
from provisioner.apply.verdicts import Review, Verdict
from provisioner.errors import PlanError
from provisioner.github.actions import SUMMARY_LIMIT, plan_outputs
from provisioner.github.comment import ReviewedApp, RunInfo
from provisioner.github.explain import explain_difference, rotated_secrets
from provisioner.github.outcome import AppOutcome, render_apply_outcome
from provisioner.github.sync import ReviewedPlan
from provisioner.plan import Plan, PlanDoc
from provisioner.render.markdown import render_markdown
from provisioner.workspace import LoadedApp

COMMAND = "provisioner github apply"
"""What the lock holder record names."""
_NEW_PLAN_HINT = (
    "nothing was changed for this app; push to a pull request (or open one) to get the"
    " current plan reviewed, then merge it"
)
_ROTATION_HINT = (
    "nothing was changed for this app; a rotated key is applied through the reviewed manual"
    " path: run the dispatch workflow in the protected environment (docs/github.md, key"
    " rotation)"
)


def review_against(reviewed: ReviewedPlan) -> Review:
    """Refuse a plan that is not the one reviewed on the pull request (with why)."""
    data = reviewed.data
    by_app = {app.app: app for app in data.apps}
    where = f"pull request #{reviewed.pull.number}"

    def review(plan: Plan) -> PlanError | None:
        if plan.is_empty:  # nothing left to do: whatever moved, no call would be made
            return None
        app = by_app.get(plan.app)
        if app is None:
            return PlanError(
                f"app {plan.app} has changes but was not in the plan reviewed on {where}",
                hint=_NEW_PLAN_HINT,
            )
        document = plan.document
        if app.plan_id == plan.id or carries_on(app, document, not data.changes_omitted):
            return None
        why = explain_difference(app, document, changes_known=not data.changes_omitted)
        rotated = any(rotated_secrets(document["changes"]))
        return PlanError(
            f"the plan for app {plan.app} is not the one reviewed on {where} (reviewed"
            f" {app.plan_id[:12]}, now {plan.id[:12]}): {why}",
            hint=_ROTATION_HINT if rotated else _NEW_PLAN_HINT,
        )

    return review


def carries_on(reviewed: ReviewedApp, doc: PlanDoc, changes_known: bool) -> bool:
    """True when ``doc`` (a fresh plan) is what is left of the reviewed plan after an apply
    of it stopped part way (see the module docstring)."""
    state = doc["state"]
    if not changes_known or state.get("last_plan") != reviewed.plan_id:
        return False
    if doc["drift"] or doc["blocked"]:
        return False
    if reviewed.lineage is not None and state["lineage"] != reviewed.lineage:
        return False
    allowed = {_key(change.action, change.user_id, change.fields) for change in reviewed.changes}
    return all(
        _key(change["action"], change["user_id"], [field["path"] for field in change["fields"]])
        in allowed
        for change in doc["changes"]
    )


def _key(action: str, user_id: str, fields: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """A change as the comment records it; a create that came back as an adoption is the
    same change (the first run made the bot), and the fields of a create do not matter."""
    if action in ("create", "adopt"):
        return "create", user_id, ()
    return action, user_id, tuple(fields)


class ReviewedApply(ApplyRun):
    """What `github apply` did (an :class:`ApplyRun`), as the pull request and the job see it."""

    def outcomes(self) -> list[AppOutcome]:
        """One row per app, in the order of the command line."""
        applied = {each.app: each for each in self.applied}
        return [_outcome(verdict, applied.get(name)) for name, verdict in self.verdicts.items()]

    def outcome_markdown(self, run_url: str, sha: str, shard: tuple[int, int] | None = None) -> str:
        return render_apply_outcome(self.outcomes(), RunInfo(run_url, sha), shard=shard)

    def plans_markdown(self) -> str:
        if not self.docs:
            return ""
        return "\n### The plans applied\n\n" + render_markdown(self.docs, limit=SUMMARY_LIMIT // 2)

    def outputs(self) -> dict[str, str]:
        return plan_outputs(self.docs)


def _outcome(verdict: Verdict, applied: Applied | None) -> AppOutcome:
    if verdict.refusal is not None:
        return AppOutcome(verdict.name, refused=verdict.refusal.message)
    if applied is None or (applied.result is None and applied.error is None):
        return AppOutcome(verdict.name)
    if applied.error is not None:
        return AppOutcome(verdict.name, message=applied.error.message)
    result = applied.result
    assert result is not None
    failures = [item.error for item in result.results if item.error is not None]
    problem = result.persist_error or (failures[0] if failures else None)
    return AppOutcome(
        verdict.name, counts=result.counts, message=problem.message if problem else None
    )


def apply_reviewed(
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    reviewed: ReviewedPlan | None,
    *,
    allow_empty: bool,
    concurrency: int,
    show: Printer,
) -> ReviewedApply:
    """Plan (refresh, lock) and apply every loaded app: with ``reviewed``, only the apps
    whose plan is the reviewed one; without (``--auto-approve``), every unblocked app."""
    run = apply_apps(
        loaded,
        env,
        reviewed_rule(reviewed),
        show,
        refresh=True,
        allow_empty=allow_empty,
        concurrency=concurrency,
        command=COMMAND,
    )
    return ReviewedApply(run.verdicts, run.applied, run.code, run.closing)


def reviewed_rule(reviewed: ReviewedPlan | None) -> ReviewRule:
    """The plans the pull request reviewed, and their ids on every write (a re-run carries
    on); without one (``--auto-approve``), any unblocked plan."""
    if reviewed is None:
        return ReviewRule()
    return ReviewRule(review_against(reviewed), carries=reviewed.data.plan_ids)
