"""`provisioner gitlab apply`: the reviewed changes of a merged merge request, bot by bot,
or (``--pending N``) the pending plan a reviewer approved. Prints; the run is
:class:`provisioner.cli.forge_apply.ForgeApplyRun` (with GitHub's), this module keeps
GitLab's part of it: notes on merge requests and issues, links; the work is in
:mod:`provisioner.forge.apply` and :mod:`provisioner.gitlab.sync`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from provisioner.cli.forge_apply import ApplyOptions, ForgeApplyRun
from provisioner.cli.gitlab_job import (
    GitLabJob,
    JobFiles,
    job_options,
    load_masked,
    start_job,
    warn,
)
from provisioner.cli.options import allow_empty_option, concurrency_option
from provisioner.errors import GitLabError, NoMergedPullRequestError, UnreviewedPlanError
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
from provisioner.notify import Summary
from provisioner.plan import PlanDoc
from provisioner.render.texts import Lang

COMMAND = "provisioner gitlab apply"
"""What the lock holder record names."""
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
    options = ApplyOptions(allow_empty, concurrency, shard)
    with job.client() as client:
        run = _Run(job, loaded, env, options, client, job.trusted(client))
        if pending is not None:
            return run.pending(pending)
        merged = _merged(job, client, auto_approve)
        if merged is None:
            return run.auto_approved()
        where = _Where("merge_requests", merged.iid, merged.web_url)
        try:
            reviewed = reviewed_plan(client, merged, run.trusted)
        except UnreviewedPlanError as exc:
            return run.unreviewed(where, exc)
        warn(list(reviewed.warnings))
        click.echo(
            f"Applying the changes reviewed on merge request !{merged.iid}"
            f" (head {reviewed.data.head_sha[:12]}), bot by bot."
        )
        return run.reviewed(where, reviewed.data)


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


@dataclass(frozen=True)
class _Where:
    """A merge request or issue the job writes on; ``web_url``: its page, when known (the
    notifications link it, else its page under ``CI_PROJECT_URL``)."""

    thread: Thread
    iid: int
    web_url: str = ""

    @property
    def ref(self) -> str:
        """What its number is written after: ``!`` for a merge request, ``#`` for an issue."""
        return GITLAB.ref if self.thread == "merge_requests" else "#"


@dataclass
class _Run(ForgeApplyRun[GitLabJob, _Where]):
    """One `gitlab apply` job: notes on merge requests and issues."""

    wording = GITLAB
    command = COMMAND
    plans_room = PLANS_ROOM
    forge_error = GitLabError
    comment_word = "note"

    client: GitLabClient
    trusted: TrustedUser

    def pending(self, number: int) -> int:
        """Apply the pending plan on ``number`` exactly; a new one for what changed since."""
        thread, found = find_pending(self.client, number, self.trusted)
        where = _Where(thread, number)
        return self.pending_plan(where, found, where.ref)

    def _number(self, where: _Where) -> int:
        return where.iid

    def _send_pending(self, where: _Where, body: str) -> str:
        note, warnings = post_pending(self.client, where.thread, where.iid, body, self.trusted)
        warn(warnings)
        return f"(note {note.id} on {where.ref}{where.iid})"

    def _send_outcome(self, body: str, where: _Where, marker: str) -> str:
        thread, iid = where.thread, where.iid
        note, warnings = upsert_note(self.client, thread, iid, body, marker, self.trusted)
        warn(warnings)
        return str(note.id)

    def _notify(self, summaries: Sequence[Summary], where: _Where | None) -> None:
        if where is None:
            self.job.notify(summaries, self.loaded, self.env)
        else:
            thread = (where.thread, where.iid)
            self.job.notify(summaries, self.loaded, self.env, thread, where.web_url)

    def _outputs(self, docs: Sequence[PlanDoc]) -> dict[str, str]:
        return plan_outputs(docs)
