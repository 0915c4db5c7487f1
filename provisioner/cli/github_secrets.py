"""`provisioner github secrets`: the variables every app needs, the bundle templates, and
which of them this environment (with its ``PROVISIONER_SECRETS`` bundle) lacks
(:mod:`provisioner.github.wiring`, on :mod:`provisioner.forge.secrets`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from provisioner.cli.github_job import use_secrets_bundle
from provisioner.cli.options import bots_dir_option, env_file_option
from provisioner.forge.secrets import app_needs
from provisioner.github.wiring import (
    Unloaded,
    missing_names,
    render_secrets_text,
    secrets_document,
)
from provisioner.workspace import load_each


@click.command("secrets")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for tools.",
)
def command(apps: tuple[str, ...], bots_dir: Path, output_format: str) -> int:
    """List the environment variables each APP (default: every app under --bots-dir)
    references, grouped per app with where each is used (app.yaml's settings, every bot's
    fields), the bundle templates (`NAME=` lines for the PROVISIONER_SECRETS secret of the
    apply and drift jobs, and PROVISIONER_PLAN_SECRETS with the read-only DSNs of plan
    jobs), and which of them this environment lacks. The environment includes the
    PROVISIONER_SECRETS bundle when it is set, as in the `github` jobs. Prints names only,
    never a value.

    Exit status: 0 when every variable is set (state.readDsn's are optional), 1 when one is
    missing or an app's manifests cannot be read.
    """
    env = dict(os.environ)
    use_secrets_bundle(env, workflow=env.get("GITHUB_ACTIONS") == "true")
    loaded = load_each(apps, bots_dir, env=env, require_secrets=False)
    needs = [app_needs(each.app) for each in loaded if each.app is not None]
    failures = [
        Unloaded(each.name, each.error.message, each.error.hint)
        for each in loaded
        if each.error is not None
    ]
    if output_format == "json":
        document = secrets_document(needs, env, failures)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(render_secrets_text(needs, env, failures), nl=False)
    return 1 if failures or missing_names(needs, env) else 0
