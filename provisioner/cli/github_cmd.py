"""`provisioner github plan|apply|drift`: the GitOps loop on GitHub Actions (docs/github.md).

Each command reads what the runner provides (``GITHUB_*``; the token from ``GITHUB_TOKEN``
only), registers every secret value with ``::add-mask::`` before printing anything else,
prints manifest-derived text only inside ``::stop-commands::`` blocks, writes the job summary
and the step outputs, and makes a constant number of GitHub calls whatever the number of apps:

- ``plan`` (``pull_request``): no secret needed; plans from the recorded state; one sticky
  comment (or, with ``--results-out``, a shard's result for a fan-in job; with ``--results``,
  the fan-in of several shards);
- ``apply`` (``push`` to the default branch; :mod:`provisioner.cli.github_apply`): the merged
  pull request's reviewed changes, bot by bot, re-planned with refresh under the lock; the
  outcome and, for what was refused, a pending plan on the pull request; ``--pending N``
  applies a pending plan a reviewer approved;
- ``drift`` (``schedule``): refresh every app; one issue, opened, rewritten, reopened, closed;
- ``secrets`` (anywhere): the variables every app needs (:mod:`provisioner.cli.github_secrets`).

Each job command first merges the secrets bundle ``PROVISIONER_SECRETS`` (the Action's
``secrets`` input) into its environment, masking every value (:func:`start_job`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from provisioner.cli import github_apply
from provisioner.cli.github_job import (
    Job,
    diagnostics_markdown,
    echo_untrusted,
    failures_markdown,
    gather_plans,
    introduced_secrets,
    start_job,
    warn,
    write_result,
)
from provisioner.cli.github_secrets import command as secrets_command
from provisioner.cli.notifying import send_notifications
from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    env_file_option,
    lang_option,
    shard_option,
)
from provisioner.cli.output import write_output_file
from provisioner.errors import ConfigError, GitHubError
from provisioner.exit_codes import EXIT_BLOCKED, EXIT_CHANGES
from provisioner.forge.comment import AppFailure, RunInfo, render_plan_comment
from provisioner.forge.drift import DriftReport
from provisioner.forge.gather import Gathered, drift_seen, write_drift_records
from provisioner.forge.seen import seen_markdown, seen_text
from provisioner.forge.shards import shard_result_json
from provisioner.github.actions import (
    SUMMARY_LIMIT,
    PullRequestEvent,
    annotation,
    plan_outputs,
    read_pull_request_event,
)
from provisioner.github.sync import (
    LabelKind,
    parse_label_names,
    plan_labels,
    sync_drift_issue,
    sync_plan_labels,
    upsert_plan_comment,
)
from provisioner.notify import drift_summaries
from provisioner.plan import PlanDoc
from provisioner.render.drift import has_findings, render_drift_text
from provisioner.render.fleet import plan_text
from provisioner.render.markdown import render_markdown
from provisioner.render.plan import render_json
from provisioner.render.safe import html_comment_safe
from provisioner.render.texts import Lang, tr
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
            env_file_option,
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
@lang_option
@click.option(
    "--pr-labels",
    "labels",
    envvar="PROVISIONER_PR_LABELS",
    default="",
    metavar="SPEC",
    callback=lambda ctx, param, value: _label_names(value),
    help="Labels set from the plan: `off` for none, or KIND=NAME pairs renaming some of "
    "provisioner:no-changes, provisioner:changes, provisioner:delete, provisioner:blocked "
    "(KIND: no-changes, changes, delete, blocked). Env PROVISIONER_PR_LABELS.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the plans as JSON (as `provisioner plan --out`), e.g. for an artifact or "
    "a policy check; not written when an app failed to plan.",
)
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
    lang: Lang,
    labels: dict[LabelKind, str] | None,
    out: Path | None,
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
    job = start_job(env, need_token=results_out is None, lang=lang)
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
    gathered, seen = drift_seen(gathered, env, warn)
    docs, failures = gathered.docs, gathered.failures
    log, notes = introduced_secrets(gathered, lang)
    echo_untrusted((plan_text(docs) or "No apps to plan.\n") + seen_text(seen) + log)
    notes = seen_markdown(seen, lang) + notes
    job.summary(_plan_summary(docs, failures, gathered.loaded, notes, lang))
    job.outputs(plan_outputs(docs))
    if out is not None and not failures:
        write_output_file(out, render_json(docs), f"the plan to {out}")
    if results_out is not None:
        result = shard_result_json(docs, failures, event.head_sha, gathered.seen)
        write_result(results_out, result, len(docs))
        return 0
    _post_plan_comment(job, event, (docs, failures), trusted_login, notes, labels)
    if failures:
        return 1
    return EXIT_BLOCKED if any(doc["blocked"] for doc in docs) else 0


def _plan_summary(
    docs: Sequence[PlanDoc],
    failures: Sequence[AppFailure],
    loaded: Sequence[LoadedApp],
    notes: str,
    lang: Lang,
) -> str:
    plans = (
        render_markdown(docs, limit=SUMMARY_LIMIT // 2, lang=lang)
        if docs
        else tr(lang, "summary.no_apps")
    )
    return plans + notes + failures_markdown(failures, lang) + diagnostics_markdown(loaded, lang)


def _post_plan_comment(
    job: Job,
    event: PullRequestEvent,
    planned: tuple[Sequence[PlanDoc], Sequence[AppFailure]],
    trusted_login: str,
    notes: str,
    labels: Mapping[LabelKind, str] | None,
) -> None:
    """The one sticky comment, and the labels of the plan (``labels`` None: none); neither
    on a fork's pull request (its token is read-only)."""
    docs, failures = planned
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
    body = render_plan_comment(docs, run, failures, notes=notes, lang=job.lang)
    with job.client() as client:
        comment, warnings = upsert_plan_comment(
            client, job.context.repository, event.number, body, trusted_login
        )
    warn(warnings)
    click.echo(f"Plan comment: {comment.html_url or comment.id}")
    if labels is not None:
        _set_labels(job, event.number, plan_labels(docs, failures), labels)


def _label_names(value: str) -> dict[LabelKind, str] | None:
    try:
        return parse_label_names(value)
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.message} ({exc.hint})") from None


def _set_labels(
    job: Job, number: int, kinds: Sequence[LabelKind], names: Mapping[LabelKind, str]
) -> None:
    """The pull request's labels from its plan; a failure is a warning (the plan stands)."""
    try:
        with job.client() as client:
            repository = job.context.repository
            synced = sync_plan_labels(client, repository, number, kinds, names, job.lang)
    except GitHubError as exc:
        warn([f"the pull request's labels were not set: {exc.message} ({exc.hint})"])
        return
    changed = [f"+{name}" for name in synced.added] + [f"-{name}" for name in synced.removed]
    click.echo(f"Labels: {' '.join(changed) or 'unchanged'}")


# --- github apply ---------------------------------------------------------------------------


command.add_command(github_apply.command)


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
@lang_option
def drift_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_login: str,
    result_files: tuple[Path, ...],
    results_out: Path | None,
    label: str,
    concurrency: int,
    lang: Lang,
) -> int:
    """Refresh each APP and keep the repository's one drift issue in step: opened when
    something differs from git (drift, unmanaged bots, pending changes), its body rewritten
    each run, reopened if it was closed while drift remains, closed when all is clean.

    Each app's `notify:` targets are told what was found or what could not be checked.

    Exit status: 0 clean, 2 something found, 1 an app could not be checked. With
    --results-out: 0 once the result is written.
    """
    env = dict(os.environ)
    job = start_job(env, need_token=results_out is None, lang=lang)
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
    now = utc_now()
    warn(
        write_drift_records(gathered, env, at=now, run=job.context.run_url, concurrency=concurrency)
    )
    docs, failures = gathered.docs, gathered.failures
    echo_untrusted(render_drift_text(docs) or "No apps to check.\n")
    found = any(has_findings(doc) for doc in docs)
    job.outputs({"changes": "true" if found else "false"})
    _notify_drift(job, gathered, env)
    if results_out is not None:
        write_result(results_out, shard_result_json(docs, failures), len(docs))
        job.summary(html_comment_safe(render_drift_text(docs)))
        return 0
    _sync_drift_issue(
        job,
        DriftReport(docs, failures, job.context.run_url, now, job.context.sha),
        trusted_login,
        label,
    )
    if failures:
        return 1
    return EXIT_CHANGES if found else 0


def _notify_drift(job: Job, gathered: Gathered, env: Mapping[str, str]) -> None:
    """Each app's ``notify`` targets get what this job found (a fan-in job has no apps:
    its shard jobs told them)."""
    failed = [(failure.app, failure.message) for failure in gathered.failures]
    summaries = drift_summaries(gathered.docs, failed)
    linked = [each.linked(job.context.run_url) for each in summaries]
    send_notifications(linked, gathered.loaded, env, lambda text: warn([text]))


def _sync_drift_issue(job: Job, report: DriftReport, trusted_login: str, label: str) -> None:
    """Open, rewrite, reopen or close the one drift issue; its text goes in the summary."""
    with job.client() as client:
        synced = sync_drift_issue(
            client, job.context.repository, report, trusted_login, label, job.lang
        )
    warn(list(synced.warnings))
    if synced.issue is not None:
        job.summary(synced.issue.text)
        click.echo(f"Drift issue #{synced.issue.number}: {synced.action}")
    else:
        job.summary(tr(job.lang, "summary.no_drift"))
