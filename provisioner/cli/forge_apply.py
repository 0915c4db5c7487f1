"""What `provisioner github apply` and `provisioner gitlab apply` share: one apply job's run
(the changes a merged review recorded, the current plan under ``--auto-approve``, the
refusal of a merge no trusted review covers, a pending plan a reviewer approved), what it
prints while it applies, and what it reports where. Each forge's module
(:mod:`provisioner.cli.github_apply`, :mod:`provisioner.cli.gitlab_apply`) keeps its command,
how it finds the merge and a pending plan, and the hooks of :class:`ForgeApplyRun`: how it
posts a pending plan and an outcome, how it links notifications, its outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypedDict, TypeVar

import click

from provisioner.apply.run import Printer
from provisioner.apply.session import Session
from provisioner.cli.apply_cmd import ApplyPrinter
from provisioner.cli.output import echo_app_error, echo_error
from provisioner.errors import ProvisionerError, UnreviewedPlanError
from provisioner.forge.apply import ReviewedApply, apply_pending, apply_reviewed
from provisioner.forge.comment import PlanData, RunInfo
from provisioner.forge.gather import gather
from provisioner.forge.outcome import AppOutcome, apply_marker, render_apply_outcome
from provisioner.forge.pending import Pending, render_pending_plan
from provisioner.forge.runner import RunnerContext
from provisioner.forge.wording import Wording
from provisioner.notify import Summary, apply_summaries
from provisioner.plan import PlanDoc
from provisioner.render.fleet import plan_text
from provisioner.render.texts import Lang, tr
from provisioner.workspace import LoadedApp

PENDING_APPLY_MARKER = "<!-- provisioner:apply-pending -->"
"""The outcome comment or note of ``--pending`` (apart from the merge's own outcome)."""


def replanned(
    loaded: Sequence[LoadedApp],
    env: Mapping[str, str],
    allow_empty: bool,
    concurrency: int,
    apps: Sequence[str] | None = None,
) -> list[PlanDoc]:
    """The fresh plans (refresh, no lock) of ``apps`` (every loaded app when None) that still
    change something; each app that cannot be planned is printed as an error. GitHub's and
    GitLab's apply jobs post these as the pending plan of what remains."""
    names = set(apps) if apps is not None else {each.name for each in loaded}
    chosen = [each for each in loaded if each.name in names and each.app]
    if not chosen:
        return []
    gathered = gather(chosen, env, refresh=True, allow_empty=allow_empty, concurrency=concurrency)
    for failure in gathered.failures:
        echo_app_error(failure.app, failure.message, hint=failure.hint)
    return [doc for doc in gathered.docs if doc["has_changes"] or doc["blocked"]]


class ShowArgs(TypedDict):
    """What :func:`apply_reviewed` and :func:`apply_pending` take besides the apps."""

    allow_empty: bool
    concurrency: int
    show: Printer


def finish(run: ReviewedApply) -> int:
    """Print the error that closed ``run``, if one did; its exit status."""
    if run.closing is not None:
        echo_error(run.closing.message, hint=run.closing.hint)
    return run.code


class ForgeApplyPrinter(ApplyPrinter):
    """What `github apply` and `gitlab apply` print while they run (GitHub's inside one
    ``::stop-commands::`` block): what `provisioner apply` prints as text, but no colour and
    no progress display while planning (a log), and a line when no app planned."""

    @contextmanager
    def planning(self, session: Session) -> Iterator[None]:
        yield

    def plans(self, docs: Sequence[PlanDoc]) -> None:
        click.echo(plan_text(docs) or "No apps to apply.\n", nl=False)


@dataclass(frozen=True)
class ApplyOptions:
    """What every path of an apply job needs besides the apps."""

    allow_empty: bool
    concurrency: int
    shard: tuple[int, int] | None


class ApplyJob(RunnerContext, Protocol):
    """The CI job an apply runs in: its runner context, in its reviewers' language."""

    @property
    def lang(self) -> Lang: ...


JobT = TypeVar("JobT", bound=ApplyJob)
WhereT = TypeVar("WhereT")
"""Where a forge's job writes: a pull request or issue; a merge request or issue."""


@dataclass
class ForgeApplyRun(ABC, Generic[JobT, WhereT]):
    """One apply job: what it applies, and what it reports where (the job summary and
    outputs, an outcome and a pending plan where the review is, the apps' notifications).
    A forge's subclass sets the class variables and says how it posts and links."""

    wording: ClassVar[Wording]
    command: ClassVar[str]
    """What the lock holder record names."""
    plans_room: ClassVar[int]
    """How much of the job summary the plans may fill."""
    forge_error: ClassVar[type[ProvisionerError]]
    """What the forge's API raises; a post that fails is reported and the job goes on."""
    comment_word: ClassVar[str]
    """What the forge calls the outcome (``comment``, ``note``), in the job's log."""

    job: JobT
    loaded: Sequence[LoadedApp]
    env: Mapping[str, str]
    options: ApplyOptions

    def reviewed(self, where: WhereT, data: PlanData) -> int:
        """The changes the review at ``where`` recorded, bot by bot; a pending plan for what
        was refused."""
        applied = self._apply(
            lambda show: apply_reviewed(
                self.loaded, self.env, data, command=self.command, wording=self.wording, **show
            )
        )
        why = tr(self.lang, "pending.why_refused", number=self._number(where), **self.terms)
        url = self._post_pending(where, applied.needs_review, why)
        body = self._outcome(applied.outcomes(), shard=self.options.shard, pending=url)
        self._report(body, applied, where, apply_marker(self.options.shard))
        return finish(applied)

    def auto_approved(self) -> int:
        """No merged review: every app's current plan, when unblocked (--auto-approve)."""
        applied = self._apply(
            lambda show: apply_reviewed(
                self.loaded, self.env, None, command=self.command, wording=self.wording, **show
            )
        )
        self._report(self._outcome(applied.outcomes()), applied, None, "")
        return finish(applied)

    def unreviewed(self, where: WhereT, error: UnreviewedPlanError) -> int:
        """A merge without a current trusted review: nothing is applied; the refusal and a
        pending plan of every app with changes go where the review is."""
        echo_error(error.message, hint=error.hint)
        docs = replanned(self.loaded, self.env, self.options.allow_empty, self.options.concurrency)
        number = self._number(where)
        why = tr(
            self.lang, "pending.why_unreviewed", number=number, error=error.message, **self.terms
        )
        url = self._post_pending(where, [], why, docs=docs)
        outcomes = [AppOutcome(doc["app"], refused=error.message) for doc in docs]
        body = self._outcome(outcomes, shard=self.options.shard, pending=url)
        self.job.summary(body)
        self._post(body, where, apply_marker(self.options.shard))
        self._notify([Summary("failure", doc["app"], error=error.message) for doc in docs], where)
        return error.exit_code

    def pending_plan(self, where: WhereT, found: Pending, ref: str) -> int:
        """Apply the pending plan ``found`` at ``where`` exactly; a new one for what changed
        since (``ref``: what ``where``'s number is written after)."""
        click.echo(f"Applying the pending plan {found.url}, app by app, where it is still exact.")
        plan_ids = found.data.plan_ids
        applied = self._apply(
            lambda show: apply_pending(
                self.loaded, self.env, plan_ids, command=self.command, wording=self.wording, **show
            )
        )
        why = tr(self.lang, "pending.why_changed", number=self._number(where), ref=ref)
        url = self._post_pending(where, applied.needs_review, why)
        body = self._outcome(applied.outcomes(), pending=url)
        body = body.replace(apply_marker(None), PENDING_APPLY_MARKER, 1)
        self._report(body, applied, where, PENDING_APPLY_MARKER)
        return finish(applied)

    def _apply(self, apply: Callable[[ShowArgs], ReviewedApply]) -> ReviewedApply:
        show: ShowArgs = {
            "allow_empty": self.options.allow_empty,
            "concurrency": self.options.concurrency,
            "show": ForgeApplyPrinter(),
        }
        return apply(show)

    def _post_pending(
        self, where: WhereT, apps: Sequence[str], why: str, *, docs: Sequence[PlanDoc] | None = None
    ) -> str | None:
        """Plan ``apps`` again (refresh, no lock: after the apply) and post what remains as a
        pending plan at ``where``; its address, or None when nothing remains or it failed."""
        if docs is None:
            options = self.options
            docs = replanned(self.loaded, self.env, options.allow_empty, options.concurrency, apps)
        if not docs:
            return None
        number, wording = self._number(where), self.wording
        body = render_pending_plan(
            docs,
            self._info(),
            number,
            why,
            limit=wording.body_limit,
            lang=self.lang,
            wording=wording,
        )
        try:
            url = self._send_pending(where, body)
        except self.forge_error as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error("(pending plan)", exc.message, hint=exc.hint)
            return None
        click.echo(f"Pending plan: {url}")
        return url

    def _report(self, body: str, run: ReviewedApply, where: WhereT | None, marker: str) -> None:
        self.job.summary(body + run.plans_markdown(self.plans_room, self.lang))
        self.job.outputs(self._outputs(run.docs))
        if where is not None:
            self._post(body, where, marker)
        self._notify(apply_summaries(run), where)

    def _post(self, body: str, where: WhereT, marker: str) -> None:
        try:
            shown = self._send_outcome(body, where, marker)
        except self.forge_error as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error(f"(outcome {self.comment_word})", exc.message, hint=exc.hint)
            return
        click.echo(f"Outcome {self.comment_word}: {shown}")

    def _outcome(
        self,
        outcomes: Sequence[AppOutcome],
        *,
        shard: tuple[int, int] | None = None,
        pending: str | None = None,
    ) -> str:
        """The outcome comment or note, in the job's language and the forge's words."""
        return render_apply_outcome(
            outcomes,
            self._info(),
            shard=shard,
            pending=pending,
            lang=self.lang,
            wording=self.wording,
        )

    def _info(self) -> RunInfo:
        return RunInfo(self.job.run_url, self.job.sha)

    @property
    def lang(self) -> Lang:
        return self.job.lang

    @property
    def terms(self) -> dict[str, str]:
        return self.wording.terms(self.lang)

    @abstractmethod
    def _number(self, where: WhereT) -> int:
        """The number of the pull request, merge request or issue at ``where``."""

    @abstractmethod
    def _send_pending(self, where: WhereT, body: str) -> str:
        """Post the pending plan ``body`` at ``where`` and warn what the post warns; where it
        is, as the log shows it. Raises :attr:`forge_error`."""

    @abstractmethod
    def _send_outcome(self, body: str, where: WhereT, marker: str) -> str:
        """Write the outcome ``body`` (the one marked ``marker``) at ``where`` and warn what
        the post warns; which it is, as the log shows it. Raises :attr:`forge_error`."""

    @abstractmethod
    def _notify(self, summaries: Sequence[Summary], where: WhereT | None) -> None:
        """Each app's ``notify`` targets get its outcome, linked to the run and ``where``."""

    @abstractmethod
    def _outputs(self, docs: Sequence[PlanDoc]) -> Mapping[str, str]:
        """The job's outputs for the plans the apps made."""
