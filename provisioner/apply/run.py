"""One apply run, the skeleton `provisioner apply` and `github apply` share.

:func:`apply_apps` opens a :class:`~provisioner.apply.session.Session` over the loaded apps,
decides per app (:func:`~provisioner.apply.verdicts.decide`), shows the plans and the
refusals, lets the approved apps apply, shows their summaries, and turns the outcomes into
the run's exit status (:func:`~provisioner.apply.verdicts.run_outcome`). Apps are
independent: one app's refusal never stops another.

Each command brings only its own rule (a :class:`ReviewRule`: which plan was reviewed, who
approves, which reviewed id the writes carry) and its own output (a :class:`Printer`).
Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.apply.session import APPLY_COMMAND, Applied, Session
from provisioner.apply.verdicts import Review, Select, Verdict, decide, run_outcome
from provisioner.errors import ManifestError, ProvisionerError
from provisioner.models import DesiredApp
from provisioner.plan import PlanDoc


class Loaded(Protocol):
    """An app folder as a command line loaded it (``workspace.LoadedApp``): the app, or why
    it could not be loaded."""

    @property
    def name(self) -> str: ...

    @property
    def app(self) -> DesiredApp | None: ...

    @property
    def error(self) -> ManifestError | None: ...


class Printer(Protocol):
    """Where a run shows what happens (the CLI prints it), in this order: the planning, the
    plans, the refusals, each change as it ends, then each app's summary and the errors of
    the apps that stopped after planning."""

    def planning(self, session: Session) -> AbstractContextManager[object]:
        """Entered while the apps plan (a progress display, or nothing)."""

    def plans(self, docs: Sequence[PlanDoc]) -> None:
        """Every plan (``Plan.document``), in app order."""

    def refused(self, app: str, error: ProvisionerError) -> None:
        """Why ``app`` makes no call (or stopped after planning)."""

    def progress(self, app: str, result: ChangeResult) -> None:
        """One change of ``app`` ended (called from the app threads)."""

    def summary(self, result: ApplyResult) -> None:
        """One app's apply, once every app is done."""


def approved(verdicts: Mapping[str, Verdict]) -> bool:
    """The default approval: the ready apps go (the reviewed plan, or --auto-approve)."""
    return True


@dataclass(frozen=True)
class ReviewRule:
    """What a command lets through. ``review`` refuses a plan that is not the reviewed one
    (None: any plan); ``approve`` says, once every verdict is known, whether the ready apps
    may go (a prompt, or :func:`approved`); ``carries``: app → the reviewed plan id its
    writes are stamped with (see :meth:`Session.apply`)."""

    review: Review | None = None
    approve: Callable[[Mapping[str, Verdict]], bool] = approved
    carries: Mapping[str, str] | None = None
    select: Select | None = None
    """A review per bot (``github apply``): what of each plan may be applied."""


@dataclass(frozen=True)
class ApplyRun:
    """What a run did: the verdicts (every app, in order), the applies, the exit status and
    the closing error to print (None: all went well)."""

    verdicts: Mapping[str, Verdict]
    applied: Sequence[Applied]
    code: int
    closing: ProvisionerError | None

    @property
    def docs(self) -> list[PlanDoc]:
        return plan_docs(self.verdicts)


def plan_docs(verdicts: Mapping[str, Verdict]) -> list[PlanDoc]:
    """The plan of every app that planned, in app order."""
    return [verdict.plan.document for verdict in verdicts.values() if verdict.plan]


def apply_apps(
    loaded: Sequence[Loaded],
    env: Mapping[str, str],
    rule: ReviewRule,
    show: Printer,
    *,
    refresh: bool,
    allow_empty: bool,
    concurrency: int,
    command: str = APPLY_COMMAND,
    held: Mapping[str, Mapping[str, ProvisionerError]] | None = None,
    lock_timeout: float | None = None,
) -> ApplyRun:
    """Plan every loaded app under its lock (``refresh``: with the live bots), decide, show,
    and apply the apps ``rule`` lets through (see the module docstring). ``command`` names
    the lock holder; ``held``: app → bot userId → why the bot gets no call; ``lock_timeout``:
    seconds to wait for a lock another run holds (None: refuse at once)."""
    desired = [each.app for each in loaded if each.app is not None]
    load_errors = {each.name: each.error for each in loaded if each.error is not None}
    with Session(
        desired,
        env,
        refresh=refresh,
        allow_empty=allow_empty,
        concurrency=concurrency,
        command=command,
        held=held,
        lock_timeout=lock_timeout,
    ) as session:
        with show.planning(session):
            planned = session.plans()
        names = [each.name for each in loaded]
        verdicts = decide(names, load_errors, planned, rule.review, rule.select)
        _show_verdicts(verdicts, show)
        go = rule.approve(verdicts)
        selections = {
            name: verdict.bots.selection
            for name, verdict in verdicts.items()
            if verdict.bots is not None
        }
        applied = session.apply(
            lambda name: go and verdicts[name].ready,
            show.progress,
            carries=rule.carries,
            selections=selections,
        )
        stop = session.stop.reason
    _show_applied(applied, show)
    outcome = run_outcome(verdicts, applied, stop)
    return ApplyRun(verdicts, applied, outcome.code, outcome.closing)


def _show_verdicts(verdicts: Mapping[str, Verdict], show: Printer) -> None:
    """Every plan, then the refusal of each refused app and bot."""
    show.plans(plan_docs(verdicts))
    for verdict in verdicts.values():
        if verdict.refusal is not None:
            show.refused(verdict.name, verdict.refusal)
        for error in verdict.bots.refused.values() if verdict.bots is not None else ():
            show.refused(verdict.name, error)


def _show_applied(applied: Sequence[Applied], show: Printer) -> None:
    """Every app's summary, then the error of each app that stopped after planning."""
    for each in applied:
        if each.result is not None:
            show.summary(each.result)
    for each in applied:
        if each.error is not None:
            show.refused(each.app, each.error)
