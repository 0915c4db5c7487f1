"""`provisioner plan`: what an apply would change, for review (text, json or markdown)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from provisioner.apply.session import Planned, Session
from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    env_file_option,
    no_refresh_option,
    shard_option,
)
from provisioner.cli.output import (
    echo_app_error,
    echo_load_warnings,
    mask,
    use_color,
    write_output_file,
)
from provisioner.cli.progress import progress_for, watch_plans
from provisioner.errors import ProvisionerError
from provisioner.exit_codes import EXIT_BLOCKED, EXIT_CHANGES
from provisioner.models import DesiredApp
from provisioner.plan import Plan, PlanDoc
from provisioner.render.fleet import plan_text
from provisioner.render.markdown import render_markdown
from provisioner.render.plan import render_json
from provisioner.workspace import LoadedApp, load_each

_RENDERERS: dict[str, Callable[[Sequence[PlanDoc]], str]] = {
    "json": render_json,
    "markdown": render_markdown,
}
"""--format json and markdown; text is rendered in colour on a terminal."""


@click.command("plan")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save the plan as JSON (with its plan id) for `apply --plan FILE`.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, markdown for a pull-request comment.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes or drift.")
@no_refresh_option
@allow_empty_option
@concurrency_option("Most apps planned at once (refresh: API calls in flight).")
@shard_option
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
    no_refresh: bool,
    allow_empty: bool,
    concurrency: int,
    shard: tuple[int, int] | None,
) -> int:
    """Show what `apply` would change for each APP (default: every app under --bots-dir).

    An APP is an app name under --bots-dir or the path to an app folder. The plan compares
    the manifests with the recorded state and, unless --no-refresh, with the bots on the
    server (drift, adoption, unmanaged bots). `endpoint: local` plans against the embedded
    emulator. No secret is needed: a ${NAME} whose variable is unset or empty is not checked
    (the plan says so) and counts as unchanged where the state records the same reference.

    Exit status: 0 no changes (or success without --detailed-exitcode), 1 error,
    2 changes or drift (with --detailed-exitcode), 3 blocked by a safety rule.
    """
    env = dict(os.environ)
    loaded = load_each(apps, bots_dir, env=env, require_secrets=False, shard=shard)
    mask(secret for each in loaded for secret in each.secrets)
    echo_load_warnings(loaded)
    desired = [each.app for each in loaded if each.app is not None]
    planned = _plan_all(desired, env, not no_refresh, allow_empty, concurrency)
    plans = [outcome.plan for outcome in planned if outcome.plan is not None]
    docs = [plan.document for plan in plans]
    _echo_plans(docs, output_format)
    errors = _errors(loaded, planned)
    for name, error in errors.items():
        echo_app_error(name, error.message, hint=error.hint)
    if out is not None and not errors:
        write_output_file(out, render_json(docs), f"the plan to {out}")
    return _exit_code(plans, failed=bool(errors), detailed=detailed_exitcode)


def _echo_plans(docs: Sequence[PlanDoc], output_format: str) -> None:
    render = _RENDERERS.get(output_format)
    if render is not None:
        click.echo(render(docs), nl=False)
    else:
        color = use_color()
        click.echo(plan_text(docs, color=color), nl=False, color=color)


def _errors(loaded: Sequence[LoadedApp], planned: Sequence[Planned]) -> dict[str, ProvisionerError]:
    """App → why it could not be loaded or planned, in the order of the command line."""
    unplanned = {each.app.name: each.error for each in planned if each.error is not None}
    errors = {each.name: each.error or unplanned.get(each.name) for each in loaded}
    return {name: error for name, error in errors.items() if error is not None}


def _plan_all(
    desired: Sequence[DesiredApp],
    env: dict[str, str],
    refresh: bool,
    allow_empty: bool,
    concurrency: int,
) -> list[Planned]:
    """Every app's plan, as :func:`provisioner.apply.session.plan_apps` makes them, with the
    progress of a multi-app run on stderr."""
    progress = progress_for("planned", [app.name for app in desired])
    with (
        progress,
        Session(
            desired,
            env,
            refresh=refresh,
            allow_empty=allow_empty,
            concurrency=concurrency,
            lock=False,
        ) as session,
    ):
        watch_plans(session, progress)
        return session.plans()


def _exit_code(plans: Sequence[Plan], *, failed: bool, detailed: bool) -> int:
    if failed:
        return 1
    if any(plan.is_blocked for plan in plans):
        return EXIT_BLOCKED
    if detailed and any(plan.has_changes for plan in plans):
        return EXIT_CHANGES
    return 0
