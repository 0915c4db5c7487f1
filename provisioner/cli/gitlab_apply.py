"""`provisioner gitlab apply`: the reviewed changes of a merged merge request, bot by bot,
or (``--pending N``) the pending plan a reviewer approved. Prints; the work is in
:mod:`provisioner.forge.apply` and :mod:`provisioner.gitlab.sync`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from provisioner.cli.github_apply import ShowArgs, _ApplyPrinter, _closed, replanned
from provisioner.cli.gitlab_job import (
    GitLabJob,
    JobFiles,
    job_options,
    load_masked,
    start_job,
    warn,
)
from provisioner.cli.options import allow_empty_option, concurrency_option
from provisioner.cli.output import echo_app_error, echo_error
from provisioner.errors import GitLabError, NoMergedPullRequestError, UnreviewedPlanError
from provisioner.forge.apply import ReviewedApply, apply_pending, apply_reviewed
from provisioner.forge.comment import PlanData, RunInfo
from provisioner.forge.outcome import AppOutcome, apply_marker, render_apply_outcome
from provisioner.forge.pending import render_pending_plan
from provisioner.forge.wording import GITLAB
from provisioner.gitlab.ci import plan_outputs
from provisioner.gitlab.client import GitLabClient, Thread
from provisioner.gitlab.models import MergeRequest
from provisioner.gitlab.sync import (
    TrustedUser,
    find_pending,
    merged_request,
    post_pending,
    reviewed_plan,
    upsert_note,
)
from provisioner.notify import Summary, apply_summaries
from provisioner.plan import PlanDoc
from provisioner.render.texts import Lang, tr
from provisioner.workspace import LoadedApp

COMMAND = "provisioner gitlab apply"
"""What the lock holder record names."""
PENDING_APPLY_MARKER = "<!-- provisioner:apply-pending -->"
PLANS_ROOM = 4 * 1024 * 1024
_PUSHED = ("push", "web", "")
"""Pipeline sources whose commit may be a merge: a push (a manual job keeps it), a run
from the UI on the default branch."""


@click.command("apply")
@job_options
@click.option(
    "--pending",
    type=click.IntRange(min=1),
    metavar="N",
    help="Apply the latest pending plan on merge request N (else issue N): each app only"
    " when its fresh plan is still exactly the pending one.",
)
@click.option(
    "--auto-approve",
    is_flag=True,
    help="When no merged merge request reviewed this commit (a direct push, a schedule),"
    " apply the current plan anyway. Use only in a protected manual job.",
)
@allow_empty_option
@concurrency_option("Most API calls in flight at once (all apps together).")
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_user_id: int | None,
    summary_file: Path | None,
    dotenv_file: Path | None,
    ca_bundle: Path | None,
    lang: Lang,
    pending: int | None,
    auto_approve: bool,
    allow_empty: bool,
    concurrency: int,
) -> int:
    """Make the changes the merge request merged as CI_COMMIT_SHA reviewed, bot by bot.

    Reads the review record from the merge request's plan note (only one written by the
    trusted user counts) and re-plans each APP it changed with a refresh, under its lock;
    what it refuses gets a pending plan on the merge request, which `--pending N` applies.

    Exit status, the worst over the apps: 0 applied or nothing to do, 3 blocked or no
    reviewed plan, 1 error or refused, 4 partial apply, 130/143 interrupted.
    """
    env = dict(os.environ)
    job = start_job(env, JobFiles(summary_file, dotenv_file, ca_bundle, lang), trusted_user_id)
    loaded = load_masked(apps, bots_dir, env, require_secrets=True, shard=shard)
    with job.client() as client:
        run = _Run(job, client, job.trusted(client), loaded, env, allow_empty, concurrency, shard)
        if pending is not None:
            return run.pending(pending)
        merged = _merged(job, client, auto_approve)
        if merged is None:
            return run.auto_approved()
        try:
            reviewed = reviewed_plan(client, merged, run.trusted)
        except UnreviewedPlanError as exc:
            return run.unreviewed(merged, exc)
        warn(list(reviewed.warnings))
        click.echo(
            f"Applying the changes reviewed on merge request !{merged.iid}"
            f" (head {reviewed.data.head_sha[:12]}), bot by bot."
        )
        return run.reviewed(merged, reviewed.data)


def _merged(job: GitLabJob, client: GitLabClient, auto_approve: bool) -> MergeRequest | None:
    """The merge request merged as this commit; None (apply without one) only with
    --auto-approve and only when no merge request was merged as it."""
    context = job.context
    try:
        if context.pipeline_source not in _PUSHED:
            raise NoMergedPullRequestError(
                f"a {context.pipeline_source} pipeline applies no merge request's reviewed plan",
                hint="give `--pending N` to apply a pending plan a reviewer approved, or run"
                " `gitlab apply --auto-approve` in a protected manual job",
            )
        return merged_request(
            client,
            context.sha,
            default_branch=context.default_branch,
            project_id=int(context.project_id),
        )
    except NoMergedPullRequestError as exc:
        if not auto_approve:
            raise
        warn([f"{exc.message}: applying the current plan (--auto-approve)"])
        return None


@dataclass
class _Run:
    """One `gitlab apply` job: what it applies, and what it reports where."""

    job: GitLabJob
    client: GitLabClient
    trusted: TrustedUser
    loaded: Sequence[LoadedApp]
    env: dict[str, str]
    allow_empty: bool
    concurrency: int
    shard: tuple[int, int] | None

    def reviewed(self, merged: MergeRequest, data: PlanData) -> int:
        """The changes merge request ``merged`` reviewed; a pending plan for what was
        refused."""
        iid = merged.iid
        applied = self._apply(
            lambda show: apply_reviewed(
                self.loaded, self.env, data, command=COMMAND, wording=GITLAB, **show
            )
        )
        why = tr(self.lang, "pending.why_refused", number=iid, **self.terms)
        url = self._post_pending("merge_requests", iid, applied.needs_review, why)
        body = self._outcome(applied.outcomes(), shard=self.shard, pending=url)
        where: tuple[Thread, int] = ("merge_requests", iid)
        self._report(body, applied, where, apply_marker(self.shard), merged.web_url)
        return _closed(applied)

    def auto_approved(self) -> int:
        applied = self._apply(
            lambda show: apply_reviewed(
                self.loaded, self.env, None, command=COMMAND, wording=GITLAB, **show
            )
        )
        body = self._outcome(applied.outcomes())
        self._report(body, applied, None, "")
        return _closed(applied)

    def unreviewed(self, merged: MergeRequest, error: UnreviewedPlanError) -> int:
        """A merged merge request without a current trusted review: nothing is applied; the
        refusal and a pending plan of every app with changes go on it."""
        echo_error(error.message, hint=error.hint)
        docs = replanned(self.loaded, self.env, self.allow_empty, self.concurrency)
        why = tr(
            self.lang,
            "pending.why_unreviewed",
            number=merged.iid,
            error=error.message,
            **self.terms,
        )
        url = self._post_pending("merge_requests", merged.iid, [], why, docs=docs)
        outcomes = [AppOutcome(doc["app"], refused=error.message) for doc in docs]
        body = self._outcome(outcomes, shard=self.shard, pending=url)
        self.job.summary(body)
        where: tuple[Thread, int] = ("merge_requests", merged.iid)
        self._post(body, where, apply_marker(self.shard))
        failed = [Summary("failure", doc["app"], error=error.message) for doc in docs]
        self.job.notify(failed, self.loaded, self.env, where, merged.web_url)
        return error.exit_code

    def pending(self, number: int) -> int:
        """Apply the pending plan on ``number`` exactly; a new one for what changed since."""
        thread, found = find_pending(self.client, number, self.trusted)
        click.echo(f"Applying the pending plan {found.url}, app by app, where it is still exact.")
        plan_ids = found.data.plan_ids
        applied = self._apply(
            lambda show: apply_pending(
                self.loaded, self.env, plan_ids, command=COMMAND, wording=GITLAB, **show
            )
        )
        ref = GITLAB.ref if thread == "merge_requests" else "#"
        why = tr(self.lang, "pending.why_changed", number=number, ref=ref)
        url = self._post_pending(thread, number, applied.needs_review, why)
        body = self._outcome(applied.outcomes(), pending=url)
        body = body.replace(apply_marker(None), PENDING_APPLY_MARKER, 1)
        self._report(body, applied, (thread, number), PENDING_APPLY_MARKER)
        return _closed(applied)

    def _apply(self, apply: Callable[[ShowArgs], ReviewedApply]) -> ReviewedApply:
        show: ShowArgs = {
            "allow_empty": self.allow_empty,
            "concurrency": self.concurrency,
            "show": _ApplyPrinter(),
        }
        return apply(show)

    def _post_pending(
        self,
        thread: Thread,
        iid: int,
        apps: Sequence[str],
        why: str,
        *,
        docs: Sequence[PlanDoc] | None = None,
    ) -> str | None:
        docs = (
            docs
            if docs is not None
            else replanned(self.loaded, self.env, self.allow_empty, self.concurrency, apps)
        )
        if not docs:
            return None
        body = render_pending_plan(
            docs,
            self._info(),
            iid,
            why,
            limit=GITLAB.body_limit,
            lang=self.lang,
            wording=GITLAB,
        )
        try:
            note, warnings = post_pending(self.client, thread, iid, body, self.trusted)
        except GitLabError as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error("(pending plan)", exc.message, hint=exc.hint)
            return None
        warn(warnings)
        where = "!" if thread == "merge_requests" else "#"
        url = f"(note {note.id} on {where}{iid})"
        click.echo(f"Pending plan: {url}")
        return url

    def _report(
        self,
        body: str,
        run: ReviewedApply,
        where: tuple[Thread, int] | None,
        marker: str,
        web_url: str = "",
    ) -> None:
        self.job.summary(body + run.plans_markdown(PLANS_ROOM, self.lang))
        self.job.outputs(plan_outputs(run.docs))
        if where is not None:
            self._post(body, where, marker)
        self.job.notify(apply_summaries(run), self.loaded, self.env, where, web_url)

    def _post(self, body: str, where: tuple[Thread, int], marker: str) -> None:
        thread, iid = where
        try:
            note, warnings = upsert_note(self.client, thread, iid, body, marker, self.trusted)
        except GitLabError as exc:  # the apply is done and recorded: say so, do not hide it
            echo_app_error("(outcome note)", exc.message, hint=exc.hint)
            return
        warn(warnings)
        click.echo(f"Outcome note: {note.id}")

    def _info(self) -> RunInfo:
        return RunInfo(self.job.run_url, self.job.sha)

    def _outcome(
        self,
        outcomes: Sequence[AppOutcome],
        *,
        shard: tuple[int, int] | None = None,
        pending: str | None = None,
    ) -> str:
        """The outcome note, in the job's language and GitLab's words."""
        return render_apply_outcome(
            outcomes, self._info(), shard=shard, pending=pending, lang=self.lang, wording=GITLAB
        )

    @property
    def lang(self) -> Lang:
        return self.job.lang

    @property
    def terms(self) -> dict[str, str]:
        return GITLAB.terms(self.lang)
