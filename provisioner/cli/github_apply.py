"""`provisioner github apply`: the reviewed changes of a merged pull request, bot by bot, or
(``--pending N``) the pending plan a reviewer approved. Prints; the work is in
:mod:`provisioner.forge.apply` and :mod:`provisioner.forge.pending`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import click

from provisioner.apply.run import Printer
from provisioner.apply.session import Session
from provisioner.cli.apply_cmd import ApplyPrinter
from provisioner.cli.github_job import Job, load_masked, start_job, warn
from provisioner.cli.notifying import send_notifications
from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    env_file_option,
    lang_option,
    shard_option,
)
from provisioner.cli.output import echo_app_error, echo_error
from provisioner.errors import GitHubError, NoMergedPullRequestError, UnreviewedPlanError
from provisioner.forge.apply import ReviewedApply, apply_pending, apply_reviewed
from provisioner.forge.comment import DEFAULT_TRUSTED_LOGIN, PlanData, RunInfo
from provisioner.forge.gather import gather
from provisioner.forge.outcome import AppOutcome, apply_marker, render_apply_outcome
from provisioner.forge.pending import render_pending_plan
from provisioner.forge.wording import GITHUB
from provisioner.github.actions import SUMMARY_LIMIT, plan_outputs, stop_commands
from provisioner.github.client import GitHubClient, PullRequest
from provisioner.github.sync import (
    find_pending,
    merged_pull,
    post_apply_outcome,
    post_pending,
    reviewed_plan,
)
from provisioner.notify import Summary, apply_summaries
from provisioner.plan import PlanDoc
from provisioner.render.fleet import plan_text
from provisioner.render.texts import Lang, tr
from provisioner.workspace import LoadedApp

PENDING_APPLY_MARKER = "<!-- provisioner:apply-pending -->"
"""The outcome comment of ``--pending`` (apart from the merge's own outcome)."""


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


@dataclass(frozen=True)
class Options:
    """What every path of the command needs besides the apps."""

    trusted_login: str
    allow_empty: bool
    concurrency: int
    shard: tuple[int, int] | None


@click.command("apply")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
@shard_option
@click.option(
    "--trusted-login",
    default=DEFAULT_TRUSTED_LOGIN,
    show_default=True,
    metavar="LOGIN",
    help="The identity the workflow writes as; only its comments and issues are believed "
    "(a GitHub App: APP-SLUG[bot]).",
)
@click.option(
    "--pending",
    type=click.IntRange(min=1),
    metavar="N",
    help="Apply the latest pending plan on pull request or issue N (the dispatch workflow, in"
    " the protected environment whose approval is the review): each app only when its fresh"
    " plan is still exactly the pending one.",
)
@click.option(
    "--auto-approve",
    is_flag=True,
    help="When no merged pull request reviewed this commit (a direct push, a manual dispatch),"
    " apply the current plan anyway. Use only in an environment with required reviewers.",
)
@allow_empty_option
@concurrency_option("Most API calls in flight at once (all apps together).")
@lang_option
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_login: str,
    pending: int | None,
    auto_approve: bool,
    allow_empty: bool,
    concurrency: int,
    lang: Lang,
) -> int:
    """Make the changes the pull request merged as GITHUB_SHA reviewed, bot by bot.

    Reads the review record from the pull request's plan comment (only one written by
    --trusted-login counts) and re-plans each APP it changed with a refresh, under its lock.
    Each reviewed bot whose manifest is still the reviewed one gets its change in the form
    the server now needs (create, adopt, update, or recorded as already declared); a bot
    whose manifest changed since, that drifted in fields the change does not set, or that
    meets another bot under its userId is refused, with what to do. Bots the pull request
    did not change are never written. Refusals get a pending plan on the pull request, which
    `--pending N` applies once a reviewer approves the dispatch run.

    Exit status, the worst over the apps: 0 applied or nothing to do, 3 blocked or no
    reviewed plan, 1 error or refused, 4 partial apply (re-run to converge), 130/143
    interrupted.
    """
    env = dict(os.environ)
    job = start_job(env, lang=lang)
    loaded = load_masked(apps, bots_dir, env, require_secrets=True, shard=shard)  # masks first
    options = Options(trusted_login, allow_empty, concurrency, shard)
    with job.client() as client:
        run = _Run(job, client, loaded, env, options)
        if pending is not None:
            return run.pending(pending)
        pull = _merged_pull(job, client, auto_approve)
        if pull is None:
            return run.auto_approved()
        try:
            reviewed = reviewed_plan(client, job.context.repository, pull, trusted_login)
        except UnreviewedPlanError as exc:
            return run.unreviewed(pull, exc)
        warn(list(reviewed.warnings))
        click.echo(
            f"Applying the changes reviewed on pull request #{pull.number}"
            f" (head {reviewed.data.head_sha[:12]}), bot by bot."
        )
        return run.reviewed(pull, reviewed.data)


def _merged_pull(job: Job, client: GitHubClient, auto_approve: bool) -> PullRequest | None:
    """The pull request merged as this commit; None (apply without one) only with
    --auto-approve and only when no pull request was merged as this commit."""
    context = job.context
    try:
        if context.event_name not in ("push", ""):
            raise NoMergedPullRequestError(
                f"a {context.event_name} run applies no pull request's reviewed plan",
                hint="give `--pending N` to apply a pending plan a reviewer approved, or run"
                " `github apply --auto-approve` in an environment with required reviewers"
                " (see examples/github/dispatch.yml)",
            )
        return merged_pull(client, context.repository, context.sha)
    except NoMergedPullRequestError as exc:
        if not auto_approve:
            raise
        warn([f"{exc.message}: applying the current plan (--auto-approve)"])
        return None


@dataclass
class _Run:
    """One `github apply` job: what it applies, and what it reports where."""

    job: Job
    client: GitHubClient
    loaded: Sequence[LoadedApp]
    env: Mapping[str, str]
    options: Options

    def reviewed(self, pull: PullRequest, data: PlanData) -> int:
        """The changes ``pull`` reviewed, bot by bot; a pending plan for what was refused."""
        applied = self._apply(lambda show: apply_reviewed(self.loaded, self.env, data, **show))
        why = tr(self.lang, "pending.why_refused", number=pull.number, **GITHUB.terms(self.lang))
        url = self._post_pending(pull.number, applied.needs_review, why)
        body = render_apply_outcome(
            applied.outcomes(), self._info(), shard=self.options.shard, pending=url, lang=self.lang
        )
        self._report(body, applied, pull.number, apply_marker(self.options.shard))
        return _closed(applied)

    def auto_approved(self) -> int:
        """No pull request: every app's current plan, when unblocked (--auto-approve)."""
        applied = self._apply(lambda show: apply_reviewed(self.loaded, self.env, None, **show))
        info = self._info()
        body = applied.outcome_markdown(info.run_url, info.head_sha, lang=self.lang)
        self._report(body, applied, None, "")
        return _closed(applied)

    def unreviewed(self, pull: PullRequest, error: UnreviewedPlanError) -> int:
        """A merged pull request without a current trusted review: nothing is applied; the
        refusal and a pending plan of every app with changes go on the pull request."""
        echo_error(error.message, hint=error.hint)
        docs = replanned(self.loaded, self.env, self.options.allow_empty, self.options.concurrency)
        terms = GITHUB.terms(self.lang)
        why = tr(
            self.lang, "pending.why_unreviewed", number=pull.number, error=error.message, **terms
        )
        url = self._post_pending(pull.number, [], why, docs=docs)
        outcomes = [AppOutcome(doc["app"], refused=error.message) for doc in docs]
        body = render_apply_outcome(
            outcomes, self._info(), shard=self.options.shard, pending=url, lang=self.lang
        )
        self.job.summary(body)
        self._post(body, pull.number, apply_marker(self.options.shard))
        self._notify(
            [Summary("failure", doc["app"], error=error.message) for doc in docs], pull.number
        )
        return error.exit_code

    def pending(self, number: int) -> int:
        """Apply the pending plan on ``number`` exactly; a new one for what changed since."""
        repository, login = self.job.context.repository, self.options.trusted_login
        found = find_pending(self.client, repository, number, login)
        click.echo(f"Applying the pending plan {found.url}, app by app, where it is still exact.")
        plan_ids = found.data.plan_ids
        applied = self._apply(lambda show: apply_pending(self.loaded, self.env, plan_ids, **show))
        why = tr(self.lang, "pending.why_changed", number=number, ref=GITHUB.ref)
        url = self._post_pending(number, applied.needs_review, why)
        body = render_apply_outcome(applied.outcomes(), self._info(), pending=url, lang=self.lang)
        body = body.replace(apply_marker(None), PENDING_APPLY_MARKER, 1)
        self._report(body, applied, number, PENDING_APPLY_MARKER)
        return _closed(applied)

    def _apply(self, apply: Callable[[ShowArgs], ReviewedApply]) -> ReviewedApply:
        """Run ``apply`` with the manifest-derived output inside one ``::stop-commands::``."""
        show: ShowArgs = {
            "allow_empty": self.options.allow_empty,
            "concurrency": self.options.concurrency,
            "show": _ApplyPrinter(),
        }
        with stop_commands(lambda text: click.echo(text, nl=False)):
            return apply(show)

    def _post_pending(
        self, number: int, apps: Sequence[str], why: str, *, docs: Sequence[PlanDoc] | None = None
    ) -> str | None:
        """Plan ``apps`` again (refresh, no lock: after the apply) and post what remains as a
        pending plan on ``number``; its address, or None when nothing remains or it failed."""
        docs = (
            docs
            if docs is not None
            else replanned(
                self.loaded, self.env, self.options.allow_empty, self.options.concurrency, apps
            )
        )
        if not docs:
            return None
        body = render_pending_plan(docs, self._info(), number, why, lang=self.lang)
        repository, login = self.job.context.repository, self.options.trusted_login
        try:
            comment, warnings = post_pending(self.client, repository, number, body, login)
        except GitHubError as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error("(pending plan)", exc.message, hint=exc.hint)
            return None
        warn(warnings)
        url = comment.html_url or f"comment {comment.id}"
        click.echo(f"Pending plan: {url}")
        return url

    def _report(self, body: str, run: ReviewedApply, number: int | None, marker: str) -> None:
        self.job.summary(body + run.plans_markdown(SUMMARY_LIMIT // 2, self.lang))
        self.job.outputs(plan_outputs(run.docs))
        if number is not None:
            self._post(body, number, marker)
        self._notify(apply_summaries(run), number)

    def _notify(self, summaries: Sequence[Summary], number: int | None) -> None:
        """Each app's ``notify`` targets get its outcome, with the run and the pull request
        (or issue: GitHub shows a pull request at its issue address too)."""
        context = self.job.context
        url = f"{context.server_url}/{context.repository}/issues/{number}" if number else None
        linked = [each.linked(context.run_url, number, url) for each in summaries]
        send_notifications(linked, self.loaded, self.env, lambda text: warn([text]))

    def _post(self, body: str, number: int, marker: str) -> None:
        repository, login = self.job.context.repository, self.options.trusted_login
        try:
            comment, warnings = post_apply_outcome(
                self.client, repository, number, body, login, marker
            )
        except GitHubError as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error("(outcome comment)", exc.message, hint=exc.hint)
            return
        warn(warnings)
        click.echo(f"Outcome comment: {comment.html_url or comment.id}")

    @property
    def lang(self) -> Lang:
        return self.job.lang

    def _info(self) -> RunInfo:
        return RunInfo(self.job.context.run_url, self.job.context.sha)


class ShowArgs(TypedDict):
    allow_empty: bool
    concurrency: int
    show: Printer


def _closed(run: ReviewedApply) -> int:
    if run.closing is not None:
        echo_error(run.closing.message, hint=run.closing.hint)
    return run.code


class _ApplyPrinter(ApplyPrinter):
    """What `github apply` prints while it runs (inside one ``::stop-commands::`` block):
    what `provisioner apply` prints as text, but no colour and no progress display while
    planning (a log), and a line when no app planned."""

    @contextmanager
    def planning(self, session: Session) -> Iterator[None]:
        yield

    def plans(self, docs: Sequence[PlanDoc]) -> None:
        click.echo(plan_text(docs) or "No apps to apply.\n", nl=False)
