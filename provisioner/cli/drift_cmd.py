"""`provisioner drift`: refresh every app and report what differs from git, and record what
it saw beside each app's state for pull-request plans (see docs/github.md for the scheduled
job that keeps one issue about it)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provisioner.cli.notifying import send_notifications
from provisioner.cli.options import (
    bots_dir_option,
    concurrency_option,
    env_file_option,
    shard_option,
)
from provisioner.cli.output import echo_app_error, echo_load_warnings, echo_warning, mask
from provisioner.exit_codes import EXIT_CHANGES
from provisioner.forge.gather import gather, write_drift_records
from provisioner.forge.shards import shard_result_json
from provisioner.notify import drift_summaries
from provisioner.render.drift import has_findings, render_drift_text
from provisioner.state.holder import ci_run_url, utc_now
from provisioner.workspace import load_each


@click.command("drift")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
@shard_option
@concurrency_option("Most apps refreshed at once.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json: the plan documents and the apps that could not be checked.",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Do not record what this check saw beside each app's state (for pull-request plans).",
)
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    concurrency: int,
    output_format: str,
    no_record: bool,
) -> int:
    """Refresh each APP (default: every app under --bots-dir) from the API and report what
    differs from git: bots changed or deleted on the server outside git (drift), bots on the
    server that nobody manages (unmanaged) and changes in git not applied yet (pending).
    Makes no write call and takes no lock. Needs each app's credentials; Dify keys are not
    needed (a secret not in the environment is not checked).

    Records what it saw of each app it checked beside the app's state (per bot: drifted and
    in which fields, deleted, unmanaged or in sync; never a value), which `github plan`
    shows on pull requests; --no-record skips that. A record that cannot be written is a
    warning.

    Tells each app's `notify:` targets what it found (drift) or that the app could not be
    checked (failure); a target that cannot be reached is a warning.

    Exit status: 0 every app is clean, 2 something was found, 1 an app could not be checked.
    """
    env = dict(os.environ)
    loaded = load_each(apps, bots_dir, env=env, require_secrets=False, shard=shard)
    mask(secret for each in loaded for secret in each.secrets)
    echo_load_warnings(loaded)
    gathered = gather(loaded, env, refresh=True, allow_empty=True, concurrency=concurrency)
    if not no_record:
        at, run = utc_now(), ci_run_url(env)
        warnings = write_drift_records(gathered, env, at=at, run=run, concurrency=concurrency)
        for warning in warnings:
            echo_warning(warning)
    docs, failures = gathered.docs, gathered.failures
    if output_format == "json":
        click.echo(shard_result_json(docs, failures), nl=False)  # a shard result's format
    else:
        click.echo(render_drift_text(docs), nl=False)
        for failure in failures:
            echo_app_error(failure.app, failure.message, hint=failure.hint)
    failed = [(failure.app, failure.message) for failure in failures]
    summaries = [each.linked(ci_run_url(env)) for each in drift_summaries(docs, failed)]
    send_notifications(summaries, loaded, env, echo_warning)
    if failures:
        return 1
    return EXIT_CHANGES if any(has_findings(doc) for doc in docs) else 0
