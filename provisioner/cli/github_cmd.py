"""`provisioner github plan|apply|drift`: the GitOps loop on GitHub Actions (docs/github.md).

Each command reads what the runner provides (``GITHUB_*``; the token from ``GITHUB_TOKEN``
only), registers every secret value with ``::add-mask::`` before printing anything else,
prints manifest-derived text only inside ``::stop-commands::`` blocks, writes the job summary
and the step outputs, and makes a constant number of GitHub calls whatever the number of apps:

- ``plan`` (``pull_request``): no secret needed; plans from the recorded state; one sticky
  comment (or, with ``--results-out``, a shard's result for a fan-in job; with ``--results``,
  the fan-in of several shards);
- ``apply`` (``push`` to the default branch): the merged pull request's reviewed plan ids,
  re-plan with refresh under the lock, apply the apps whose plan id matches; the outcome on
  the pull request;
- ``drift`` (``schedule``): refresh every app; one issue, opened, rewritten, reopened, closed;
- ``secrets`` (anywhere): the variables every app needs (:mod:`provisioner.cli.github_secrets`).

Each job command first merges the secrets bundle ``PROVISIONER_SECRETS`` (the Action's
``secrets`` input) into its environment, masking every value (:func:`start_job`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from provisioner.apply.session import Session
from provisioner.cli.apply_cmd import ApplyPrinter
from provisioner.cli.github_job import (
    Job,
    diagnostics_markdown,
    echo_untrusted,
    failures_markdown,
    gather_plans,
    introduced_secrets,
    load_masked,
    start_job,
    warn,
    write_result,
)
from provisioner.cli.github_secrets import command as secrets_command
from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    shard_option,
)
from provisioner.cli.output import echo_app_error, echo_error
from provisioner.errors import GitHubError, NoMergedPullRequestError
from provisioner.exit_codes import EXIT_BLOCKED, EXIT_CHANGES
from provisioner.github.actions import (
    SUMMARY_LIMIT,
    PullRequestEvent,
    annotation,
    plan_outputs,
    read_pull_request_event,
    stop_commands,
)
from provisioner.github.apply import apply_reviewed
from provisioner.github.client import GitHubClient
from provisioner.github.comment import AppFailure, RunInfo, render_plan_comment
from provisioner.github.outcome import apply_marker
from provisioner.github.shards import shard_result_json
from provisioner.github.sync import (
    DriftReport,
    ReviewedPlan,
    find_reviewed_plan,
    post_apply_outcome,
    sync_drift_issue,
    upsert_plan_comment,
)
from provisioner.plan import PlanDoc
from provisioner.render.drift import has_findings, render_drift_text
from provisioner.render.markdown import render_markdown
from provisioner.render.plan import render_text
from provisioner.state.holder import utc_now
from provisioner.workspace import LoadedApp


@click.group("github")
def command() -> None:
    """The GitOps loop on GitHub Actions: `plan` on pull requests, `apply` after merge,
    `drift` on a schedule. Run them in workflows (see docs/github.md and examples/github/);
    they read GITHUB_* from the runner and the token from GITHUB_TOKEN only."""


command.add_command(secrets_command)


trusted_login_option = click.option(
    "--trusted-login",
    default="github-actions[bot]",
    show_default=True,
    metavar="LOGIN",
    help="The identity the workflow writes as; only its comments and issues are believed "
    "(a GitHub App: APP-SLUG[bot]).",
)

results_option = click.option(
    "--results",
    "result_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Fan-in: merge these shard results (from --results-out) instead of planning here; "
    "repeatable.",
)

results_out_option = click.option(
    "--results-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Shard job: write this job's result as JSON for the fan-in job (no comment/issue).",
)


def _gathering_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``APP...``, --bots-dir, --shard, --trusted-login, --results and --results-out: what
    `github plan` and `github drift` plan, or merge, and who writes for them."""
    for option in reversed(
        (
            click.argument("apps", nargs=-1),
            bots_dir_option,
            shard_option,
            trusted_login_option,
            results_option,
            results_out_option,
        )
    ):
        function = option(function)
    return function


# --- github plan ----------------------------------------------------------------------------


@command.command("plan")
@_gathering_options
@click.option(
    "--refresh",
    is_flag=True,
    help="Also read the live bots (needs the app credentials; not for fork pull requests).",
)
@allow_empty_option
@concurrency_option("Most apps planned at once.")
def plan_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_login: str,
    result_files: tuple[Path, ...],
    results_out: Path | None,
    refresh: bool,
    allow_empty: bool,
    concurrency: int,
) -> int:
    """Plan each APP for the pull request of this `pull_request` run and post the plan as
    one comment (edited on every push), with the plan ids the apply after merge checks.

    Needs no RongCloud or Dify secret: it plans from the recorded state (a shared backend)
    without refresh, and a secret not in the environment counts as unchanged where its
    reference is (the plan says "not checked in this run"). Fork pull requests get the job
    summary, not a comment (their token is read-only).

    Exit status: 0 the plan was posted (changes included), 3 an app is blocked by a safety
    rule, 1 an error or an app that could not be planned. With --results-out: 0 once the
    result is written (the fan-in job reports blocked and failed apps). Give --allow-empty
    to plan and apply alike: whether a plan is blocked is part of its id.
    """
    env = dict(os.environ)
    job = start_job(env, need_token=results_out is None)
    event = read_pull_request_event(job.context.event_path)
    gathered = gather_plans(
        apps,
        bots_dir,
        env,
        result_files=result_files,
        results_out=results_out,
        refresh=refresh,
        allow_empty=allow_empty,
        shard=shard,
        concurrency=concurrency,
    )
    gathered.check_head(event.head_sha)
    docs, failures = gathered.docs, gathered.failures
    log, notes = introduced_secrets(gathered)
    echo_untrusted((render_text(docs) or "No apps to plan.\n") + log)
    job.summary(_plan_summary(docs, failures, gathered.loaded) + notes)
    job.outputs(plan_outputs(docs))
    if results_out is not None:
        write_result(results_out, shard_result_json(docs, failures, event.head_sha), len(docs))
        return 0
    _post_plan_comment(job, event, docs, failures, trusted_login, notes)
    if failures:
        return 1
    return EXIT_BLOCKED if any(doc["blocked"] for doc in docs) else 0


def _plan_summary(
    docs: Sequence[PlanDoc], failures: Sequence[AppFailure], loaded: Sequence[LoadedApp]
) -> str:
    plans = render_markdown(docs, limit=SUMMARY_LIMIT // 2) if docs else "No apps to plan.\n"
    return plans + failures_markdown(failures) + diagnostics_markdown(loaded)


def _post_plan_comment(
    job: Job,
    event: PullRequestEvent,
    docs: Sequence[PlanDoc],
    failures: Sequence[AppFailure],
    trusted_login: str,
    notes: str = "",
) -> None:
    if event.is_from_fork:
        click.echo(
            annotation(
                "notice",
                "a fork's pull request gets a read-only token: the plan is in the job summary,"
                " not in a comment",
                title="provisioner",
            ),
            nl=False,
        )
        return
    run = RunInfo(job.context.run_url, event.head_sha)
    body = render_plan_comment(docs, run, failures, notes=notes)
    with job.client() as client:
        comment, warnings = upsert_plan_comment(
            client, job.context.repository, event.number, body, trusted_login
        )
    warn(warnings)
    click.echo(f"Plan comment: {comment.html_url or comment.id}")


# --- github apply ---------------------------------------------------------------------------


@command.command("apply")
@click.argument("apps", nargs=-1)
@bots_dir_option
@shard_option
@trusted_login_option
@click.option(
    "--auto-approve",
    is_flag=True,
    help="When no merged pull request reviewed this commit (a direct push, a manual dispatch),"
    " apply the current plan anyway. Use only in an environment with required reviewers.",
)
@allow_empty_option
@concurrency_option("Most API calls in flight at once (all apps together).")
def apply_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_login: str,
    auto_approve: bool,
    allow_empty: bool,
    concurrency: int,
) -> int:
    """Apply what the pull request merged as GITHUB_SHA reviewed, app by app.

    Reads the plan ids from the pull request's plan comment (only one written by
    --trusted-login counts), re-plans each APP with a refresh under its lock, and applies
    only the apps whose fresh plan id is the reviewed one; for any other it makes no call
    and says what differs (state moved, changes added or gone, drift, a secret changed
    outside git). Apps are independent. The outcome goes on the pull request and in the
    job summary.

    Exit status, the worst over the apps: 0 applied or nothing to do, 3 blocked or no
    reviewed plan, 1 error or refused, 4 partial apply (re-run to converge), 130/143
    interrupted.
    """
    env = dict(os.environ)
    job = start_job(env)
    loaded = load_masked(apps, bots_dir, env, require_secrets=True, shard=shard)  # masks first
    with job.client() as client:
        reviewed = _reviewed_plan(job, client, trusted_login, auto_approve)
        with stop_commands(lambda text: click.echo(text, nl=False)):
            run = apply_reviewed(
                loaded,
                env,
                reviewed,
                allow_empty=allow_empty,
                concurrency=concurrency,
                show=_ApplyPrinter(),
            )
        body = run.outcome_markdown(job.context.run_url, job.context.sha, shard)
        job.summary(body + run.plans_markdown())
        job.outputs(run.outputs())
        if reviewed is not None:
            _post_outcome(client, job, reviewed, body, trusted_login, shard)
    if run.closing is not None:
        echo_error(run.closing.message, hint=run.closing.hint)
    return run.code


def _reviewed_plan(
    job: Job, client: GitHubClient, trusted_login: str, auto_approve: bool
) -> ReviewedPlan | None:
    """The reviewed plan of the merged pull request; None (apply without one) only with
    --auto-approve and only when no pull request was merged as this commit."""
    context = job.context
    try:
        if context.event_name not in ("push", ""):
            raise NoMergedPullRequestError(
                f"a {context.event_name} run applies no pull request's reviewed plan",
                hint="run `github apply --auto-approve` in an environment with required"
                " reviewers (see examples/github/dispatch.yml)",
            )
        reviewed = find_reviewed_plan(client, context.repository, context.sha, trusted_login)
    except NoMergedPullRequestError as exc:
        if not auto_approve:
            raise
        warn([f"{exc.message}: applying the current plan (--auto-approve)"])
        return None
    warn(list(reviewed.warnings))
    click.echo(
        f"Applying the plan reviewed on pull request #{reviewed.pull.number}"
        f" (head {reviewed.data.head_sha[:12]})."
    )
    return reviewed


def _post_outcome(
    client: GitHubClient,
    job: Job,
    reviewed: ReviewedPlan,
    body: str,
    trusted_login: str,
    shard: tuple[int, int] | None,
) -> None:
    number, repository = reviewed.pull.number, job.context.repository
    try:
        comment, warnings = post_apply_outcome(
            client, repository, number, body, trusted_login, apply_marker(shard)
        )
    except GitHubError as exc:  # the apply is done and recorded: say so, do not hide it
        echo_app_error("(outcome comment)", exc.message, hint=exc.hint)
        return
    warn(warnings)
    click.echo(f"Outcome comment: {comment.html_url or comment.id}")


class _ApplyPrinter(ApplyPrinter):
    """What `github apply` prints while it runs (inside one ``::stop-commands::`` block):
    what `provisioner apply` prints as text, but no colour and no progress display while
    planning (a log), and a line when no app planned."""

    @contextmanager
    def planning(self, session: Session) -> Iterator[None]:
        yield

    def plans(self, docs: Sequence[PlanDoc]) -> None:
        click.echo(render_text(docs) or "No apps to apply.\n", nl=False)


# --- github drift ---------------------------------------------------------------------------


@command.command("drift")
@_gathering_options
@click.option(
    "--label",
    default="provisioner-drift",
    show_default=True,
    help="The label of the one drift issue (it is created if missing).",
)
@concurrency_option("Most apps refreshed at once.")
def drift_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_login: str,
    result_files: tuple[Path, ...],
    results_out: Path | None,
    label: str,
    concurrency: int,
) -> int:
    """Refresh each APP and keep the repository's one drift issue in step: opened when
    something differs from git (drift, unmanaged bots, pending changes), its body rewritten
    each run, reopened if it was closed while drift remains, closed when all is clean.

    Exit status: 0 clean, 2 something found, 1 an app could not be checked. With
    --results-out: 0 once the result is written.
    """
    env = dict(os.environ)
    job = start_job(env, need_token=results_out is None)
    gathered = gather_plans(
        apps,
        bots_dir,
        env,
        result_files=result_files,
        results_out=results_out,
        refresh=True,
        allow_empty=False,
        shard=shard,
        concurrency=concurrency,
    )
    docs, failures = gathered.docs, gathered.failures
    echo_untrusted(render_drift_text(docs) or "No apps to check.\n")
    found = any(has_findings(doc) for doc in docs)
    job.outputs({"changes": "true" if found else "false"})
    if results_out is not None:
        write_result(results_out, shard_result_json(docs, failures), len(docs))
        job.summary(render_drift_text(docs))
        return 0
    _sync_drift_issue(
        job, DriftReport(docs, failures, job.context.run_url, utc_now()), trusted_login, label
    )
    if failures:
        return 1
    return EXIT_CHANGES if found else 0


def _sync_drift_issue(job: Job, report: DriftReport, trusted_login: str, label: str) -> None:
    """Open, rewrite, reopen or close the one drift issue; its text goes in the summary."""
    with job.client() as client:
        synced = sync_drift_issue(client, job.context.repository, report, trusted_login, label)
    warn(list(synced.warnings))
    if synced.issue is not None:
        job.summary(synced.issue.text)
        click.echo(f"Drift issue #{synced.issue.number}: {synced.action}")
    else:
        job.summary("No drift: every app matches git.\n")
