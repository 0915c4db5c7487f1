"""`provisioner gitlab plan|apply|drift`: the GitOps loop on GitLab CI (docs/gitlab.md).

Each command reads what the runner provides (``CI_*``; the comment token from
``PROVISIONER_GITLAB_TOKEN`` only, ``CI_JOB_TOKEN`` for the reads it allows), prints the
plans in collapsible log sections (manifest text made terminal-safe), writes ``--summary``
(``plan.md``), ``--dotenv`` and the reports, and makes a constant number of GitLab calls:

- ``plan`` (``merge_request_event`` pipelines only): no secret; one sticky note on the
  merge request (none for a fork's: its code must not hold the token);
- ``apply`` (:mod:`provisioner.cli.gitlab_apply`): the merged merge request's reviewed
  changes, bot by bot; ``--pending N`` applies a pending plan;
- ``drift`` (schedule): one issue, opened, rewritten, reopened, closed.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from provisioner.cli import gitlab_apply
from provisioner.cli.github_job import (
    diagnostics_markdown,
    failures_markdown,
    introduced_secrets,
    write_result,
)
from provisioner.cli.gitlab_job import (
    GitLabJob,
    JobFiles,
    echo_sections,
    gather_plans,
    job_options,
    results_options,
    start_job,
    warn,
)
from provisioner.cli.options import allow_empty_option, concurrency_option
from provisioner.cli.output import write_output_file
from provisioner.exit_codes import EXIT_BLOCKED, EXIT_CHANGES
from provisioner.forge.comment import PLAN_MARKER, RunInfo, render_plan_comment
from provisioner.forge.drift import DriftReport
from provisioner.forge.gather import Gathered, drift_seen, write_drift_records
from provisioner.forge.seen import SeenApp, seen_markdown, seen_text
from provisioner.forge.shards import shard_result_json
from provisioner.forge.wording import GITLAB
from provisioner.gitlab.ci import (
    plan_outputs,
    require_merge_request,
    require_token,
    terraform_report,
)
from provisioner.gitlab.sync import sync_drift_issue, upsert_note
from provisioner.notify import drift_summaries
from provisioner.render.diagnostics import render_codequality
from provisioner.render.drift import has_findings, render_drift_text
from provisioner.render.markdown import render_markdown
from provisioner.render.safe import html_comment_safe, terminal_safe
from provisioner.render.texts import Lang, tr
from provisioner.state.holder import utc_now

SUMMARY_ROOM = 4 * 1024 * 1024
"""The most plan markdown written to ``--summary`` (an artifact: no limit but sense)."""


@click.group("gitlab")
def command() -> None:
    """The GitOps loop on GitLab CI: `plan` on merge requests, `apply` after merge, `drift`
    on a schedule. Run them in .gitlab-ci.yml (see docs/gitlab.md and examples/gitlab/);
    they read CI_* from the runner and the token from PROVISIONER_GITLAB_TOKEN only."""


# --- gitlab plan ----------------------------------------------------------------------------


@command.command("plan")
@job_options
@results_options
@allow_empty_option
@click.option(
    "--terraform-report",
    type=click.Path(path_type=Path, dir_okay=False),
    help='Write {"create", "update", "delete"} for the merge request widget'
    " (artifacts:reports:terraform).",
)
@click.option(
    "--codequality",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the validation findings as a Code Quality report.",
)
@concurrency_option("Most apps planned at once.")
def plan_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_user_id: int | None,
    summary_file: Path | None,
    dotenv_file: Path | None,
    ca_bundle: Path | None,
    lang: Lang,
    result_files: tuple[Path, ...],
    results_out: Path | None,
    allow_empty: bool,
    terraform_report: Path | None,
    codequality: Path | None,
    concurrency: int,
) -> int:
    """Plan each APP for the merge request of this `merge_request_event` pipeline and post
    the plan as one note (edited on every push), with the review record the apply checks.

    Needs no RongCloud or Dify secret: it plans from the recorded state without refresh. A
    fork's merge request gets the log and the artifacts, never a note, and needs no token.

    Exit status: 0 planned (changes included), 3 an app is blocked by a safety rule, 1 an
    error or an app that could not be planned. With --results-out: 0 once it is written.
    """
    env = dict(os.environ)
    job = start_job(env, JobFiles(summary_file, dotenv_file, ca_bundle, lang), trusted_user_id)
    iid = require_merge_request(job.context)
    posts = results_out is None and not job.context.is_fork
    if posts:
        require_token(job.context)
    gathered = gather_plans(
        apps,
        bots_dir,
        env,
        result_files=result_files,
        refresh=False,
        allow_empty=allow_empty,
        shard=shard,
        concurrency=concurrency,
    )
    gathered.check_head(job.context.head_sha)
    gathered, seen = drift_seen(gathered, env, warn)
    docs, failures = gathered.docs, gathered.failures
    notes = _report_plans(job, gathered, seen)
    _reports(gathered, terraform_report, codequality)
    if results_out is not None:
        result = shard_result_json(docs, failures, job.context.head_sha, gathered.seen)
        write_result(results_out, result, len(docs))
        return 0
    if posts:
        _post_plan_note(job, iid, gathered, notes)
    else:
        click.echo(
            "notice: a merge request from a fork: the plan is in the job log and its"
            " artifacts; no note is posted (the fork's code must not hold a token)"
        )
    if failures:
        return 1
    return EXIT_BLOCKED if any(doc["blocked"] for doc in docs) else 0


def _report_plans(job: GitLabJob, gathered: Gathered, seen: list[SeenApp]) -> str:
    """The log sections, the summary file and the outputs; the markdown of what the last
    drift run saw and of the new secrets the merge request introduces, for the note."""
    docs, lang = gathered.docs, job.lang
    echo_sections(docs)
    log, secrets = introduced_secrets(gathered, lang, GITLAB)
    click.echo(terminal_safe(seen_text(seen, GITLAB), keep_newlines=True) + log, nl=False)
    notes = seen_markdown(seen, lang, GITLAB) + secrets
    plans = (
        render_markdown(docs, limit=SUMMARY_ROOM, lang=lang)
        if docs
        else tr(lang, "summary.no_apps")
    )
    failures = failures_markdown(gathered.failures, lang)
    job.summary(plans + notes + failures + diagnostics_markdown(gathered.loaded, lang))
    job.outputs(plan_outputs(docs))
    return notes


def _reports(gathered: Gathered, terraform: Path | None, codequality: Path | None) -> None:
    if terraform is not None:
        write_output_file(terraform, terraform_report(gathered.docs), "the Terraform report")
    if codequality is not None:
        findings = [f for each in gathered.loaded for f in (*each.problems, *each.warnings)]
        write_output_file(codequality, render_codequality(findings) + "\n", "the report")


def _post_plan_note(job: GitLabJob, iid: int, gathered: Gathered, notes: str) -> None:
    run = RunInfo(job.run_url, job.context.head_sha)
    body = render_plan_comment(
        gathered.docs,
        run,
        gathered.failures,
        limit=GITLAB.body_limit,
        notes=notes,
        lang=job.lang,
        wording=GITLAB,
    )
    with job.client() as client:
        trusted = job.trusted(client)
        note, warnings = upsert_note(client, "merge_requests", iid, body, PLAN_MARKER, trusted)
    warn(warnings)
    click.echo(f"Plan note: !{iid} note {note.id}")


# --- gitlab apply ---------------------------------------------------------------------------


command.add_command(gitlab_apply.command)


# --- gitlab drift ---------------------------------------------------------------------------


@command.command("drift")
@job_options
@results_options
@click.option(
    "--label",
    default="provisioner-drift",
    show_default=True,
    help="The label of the one drift issue (GitLab creates it if missing).",
)
@concurrency_option("Most apps refreshed at once.")
def drift_command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    trusted_user_id: int | None,
    summary_file: Path | None,
    dotenv_file: Path | None,
    ca_bundle: Path | None,
    lang: Lang,
    result_files: tuple[Path, ...],
    results_out: Path | None,
    label: str,
    concurrency: int,
) -> int:
    """Refresh each APP and keep the project's one drift issue in step: opened when
    something differs from git, its description rewritten each run, reopened if it was
    closed while drift remains, closed with a note when all is clean.

    Exit status: 0 clean, 2 something found, 1 an app could not be checked. With
    --results-out: 0 once the result is written.
    """
    env = dict(os.environ)
    job = start_job(env, JobFiles(summary_file, dotenv_file, ca_bundle, lang), trusted_user_id)
    if results_out is None:
        require_token(job.context)
    gathered = gather_plans(
        apps,
        bots_dir,
        env,
        result_files=result_files,
        refresh=True,
        allow_empty=False,
        shard=shard,
        concurrency=concurrency,
    )
    now = utc_now()
    warn(write_drift_records(gathered, env, at=now, run=job.run_url, concurrency=concurrency))
    docs, failures = gathered.docs, gathered.failures
    click.echo(terminal_safe(render_drift_text(docs) or "No apps to check.\n", keep_newlines=True))
    found = any(has_findings(doc) for doc in docs)
    job.outputs({"changes": "true" if found else "false"})
    failed = [(failure.app, failure.message) for failure in failures]
    job.notify(drift_summaries(docs, failed), gathered.loaded, env)  # a fan-in has no apps
    if results_out is not None:
        write_result(results_out, shard_result_json(docs, failures), len(docs))
        job.summary(html_comment_safe(render_drift_text(docs)))
        return 0
    report = DriftReport(docs, failures, job.run_url, now, job.sha)
    with job.client() as client:
        trusted = job.trusted(client)
        action, issue, warnings = sync_drift_issue(client, report, trusted, label, job.lang)
    warn(warnings)
    if issue is not None:
        job.summary(issue.text)
        click.echo(f"Drift issue #{issue.iid}: {action}")
    else:
        job.summary(tr(job.lang, "summary.no_drift"))
    if failures:
        return 1
    return EXIT_CHANGES if found else 0
