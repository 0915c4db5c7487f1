"""`provisioner github apply`: the reviewed changes of a merged pull request, bot by bot, or
(``--pending N``) the pending plan a reviewer approved. Prints; the run is
:class:`provisioner.cli.forge_apply.ForgeApplyRun` (with GitLab's), this module keeps
GitHub's part of it: comments, the ``::stop-commands::`` block, links; the work is in
:mod:`provisioner.forge.apply` and :mod:`provisioner.forge.pending`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from provisioner.cli.forge_apply import ApplyOptions, ForgeApplyRun, ShowArgs
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
from provisioner.errors import GitHubError, NoMergedPullRequestError, UnreviewedPlanError
from provisioner.forge.apply import COMMAND, ReviewedApply
from provisioner.forge.comment import DEFAULT_TRUSTED_LOGIN
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
from provisioner.notify import Summary
from provisioner.plan import PlanDoc
from provisioner.render.texts import Lang


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
    options = ApplyOptions(allow_empty, concurrency, shard)
    with job.client() as client:
        run = _Run(job, loaded, env, options, client, trusted_login)
        if pending is not None:
            return run.pending(pending)
        pull = _merged_pull(job, client, auto_approve)
        if pull is None:
            return run.auto_approved()
        try:
            reviewed = reviewed_plan(client, job.context.repository, pull, trusted_login)
        except UnreviewedPlanError as exc:
            return run.unreviewed(pull.number, exc)
        warn(list(reviewed.warnings))
        click.echo(
            f"Applying the changes reviewed on pull request #{pull.number}"
            f" (head {reviewed.data.head_sha[:12]}), bot by bot."
        )
        return run.reviewed(pull.number, reviewed.data)


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
class _Run(ForgeApplyRun[Job, int]):
    """One `github apply` job: comments on pull requests and issues, by number."""

    wording = GITHUB
    command = COMMAND
    plans_room = SUMMARY_LIMIT // 2
    forge_error = GitHubError
    comment_word = "comment"

    client: GitHubClient
    trusted_login: str

    def pending(self, number: int) -> int:
        """Apply the pending plan on ``number`` exactly; a new one for what changed since."""
        repository = self.job.context.repository
        found = find_pending(self.client, repository, number, self.trusted_login)
        return self.pending_plan(number, found, GITHUB.ref)

    def _apply(self, apply: Callable[[ShowArgs], ReviewedApply]) -> ReviewedApply:
        """Run ``apply`` with the manifest-derived output inside one ``::stop-commands::``."""
        with stop_commands(lambda text: click.echo(text, nl=False)):
            return super()._apply(apply)

    def _number(self, where: int) -> int:
        return where

    def _send_pending(self, where: int, body: str) -> str:
        repository, login = self.job.context.repository, self.trusted_login
        comment, warnings = post_pending(self.client, repository, where, body, login)
        warn(warnings)
        return comment.html_url or f"comment {comment.id}"

    def _send_outcome(self, body: str, where: int, marker: str) -> str:
        repository, login = self.job.context.repository, self.trusted_login
        comment, warnings = post_apply_outcome(self.client, repository, where, body, login, marker)
        warn(warnings)
        return comment.html_url or str(comment.id)

    def _notify(self, summaries: Sequence[Summary], where: int | None) -> None:
        """Linked to the run and the pull request (or issue: GitHub shows a pull request at
        its issue address too)."""
        context = self.job.context
        url = f"{context.server_url}/{context.repository}/issues/{where}" if where else None
        linked = [each.linked(context.run_url, where, url) for each in summaries]
        send_notifications(linked, self.loaded, self.env, lambda text: warn([text]))

    def _outputs(self, docs: Sequence[PlanDoc]) -> dict[str, str]:
        return plan_outputs(docs)
