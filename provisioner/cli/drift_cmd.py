"""`provisioner drift`: refresh every app and report what differs from git (see docs/github.md
for the scheduled job that keeps one issue about it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provisioner.cli.options import bots_dir_option, concurrency_option, shard_option
from provisioner.cli.output import echo_app_error, echo_load_warnings, mask
from provisioner.exit_codes import EXIT_CHANGES

if TYPE_CHECKING:
    from provisioner.errors import ProvisionerError


@click.command("drift")
@click.argument("apps", nargs=-1)
@bots_dir_option
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
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    shard: tuple[int, int] | None,
    concurrency: int,
    output_format: str,
) -> int:
    """Refresh each APP (default: every app under --bots-dir) from the API and report what
    differs from git: bots changed or deleted on the server outside git (drift), bots on the
    server that nobody manages (unmanaged) and changes in git not applied yet (pending).
    Makes no write call and takes no lock. Needs each app's credentials; Dify keys are not
    needed (a secret not in the environment is not checked).

    Exit status: 0 every app is clean, 2 something was found, 1 an app could not be checked.
    """
    from provisioner.apply.session import plan_apps
    from provisioner.render.drift import has_findings, render_drift_text
    from provisioner.workspace import load_each

    env = dict(os.environ)
    loaded = load_each(apps, bots_dir, env=env, require_secrets=False, shard=shard)
    mask(secret for each in loaded for secret in each.secrets)
    echo_load_warnings(loaded)
    desired = [each.app for each in loaded if each.app is not None]
    planned = plan_apps(desired, env, refresh=True, allow_empty=True, concurrency=concurrency)
    docs = [each.plan.document for each in planned if each.plan is not None]
    errors: dict[str, ProvisionerError] = {
        each.name: each.error for each in loaded if each.error is not None
    }
    errors.update({each.app.name: each.error for each in planned if each.error is not None})
    if output_format == "json":
        failures = [
            {"app": name, "message": error.message, "hint": error.hint}
            for name, error in errors.items()
        ]
        document = {"format_version": 1, "plans": docs, "failures": failures}
        click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(render_drift_text(docs), nl=False)
        for name, error in errors.items():
            echo_app_error(name, error.message, hint=error.hint)
    if errors:
        return 1
    return EXIT_CHANGES if any(has_findings(doc) for doc in docs) else 0
