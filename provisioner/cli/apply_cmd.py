"""`provisioner apply`: re-plan, show, confirm, then apply each app's plan (see docs/apply.md).

The plans and applies run in `provisioner.apply_session` (one thread per app, all API calls in
one pool of --concurrency workers). This module shows every plan, checks the safety rules, the
reviewed plan ids and the confirmation, then lets every app go at once; it prints the planning
errors, the progress and the summary, and turns the results into the exit status. Ctrl-C stops
new calls; in-flight calls finish and are recorded; exit 130.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.cli.exit_codes import EXIT_INTERRUPTED
from provisioner.cli.options import allow_empty_option, bots_dir_option, no_refresh_option
from provisioner.cli.output import echo_error, use_color

if TYPE_CHECKING:
    from provisioner.apply import ApplyResult, ChangeResult
    from provisioner.apply_session import AppError
    from provisioner.models import DesiredApp
    from provisioner.plan import Plan

DEFAULT_CONCURRENCY = 8


@click.command("apply")
@click.argument("apps", nargs=-1)
@bots_dir_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Apply only if the fresh plan has the ids saved by `plan --out FILE` (implies approval).",
)
@click.option(
    "--plan-id",
    "plan_ids",
    multiple=True,
    metavar="[APP=]ID",
    help="Apply only if the fresh plan has this reviewed id (implies approval); repeatable.",
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@allow_empty_option
@no_refresh_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Most API calls in flight at once (all apps together).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    plan_file: Path | None,
    plan_ids: tuple[str, ...],
    auto_approve: bool,
    allow_empty: bool,
    no_refresh: bool,
    concurrency: int,
    output_format: str,
) -> int:
    """Apply the manifests of each APP (default: every app under --bots-dir; with --plan,
    the apps in the plan file).

    Re-plans, shows the plan, asks for confirmation on a terminal, then makes the API calls
    (deletes first) and records each success in the state. A saved plan (--plan FILE or
    --plan-id) counts as approved, and is refused if the fresh plan differs from it.

    Exit status: 0 applied or no changes, 1 error or refused, 3 blocked by a safety rule,
    4 partial apply (re-run to converge), 130 interrupted.
    """
    from provisioner.apply_session import ApplySession
    from provisioner.workspace import load_apps

    if plan_file is not None and plan_ids:
        raise click.UsageError("give either --plan FILE or --plan-id, not both")
    reviewed_file = _read_reviewed_file(plan_file)
    names = list(apps) or (sorted(reviewed_file) if reviewed_file is not None else [])
    env = dict(os.environ)
    desired = load_apps(names, bots_dir, env=env)
    reviewed = reviewed_file if reviewed_file is not None else _parse_plan_ids(plan_ids, desired)
    report = _Report(output_format)
    with ApplySession(
        desired, env, refresh=not no_refresh, allow_empty=allow_empty, concurrency=concurrency
    ) as session:
        plans, errors = session.plans()
        _raise_planning_errors(errors, several_apps=len(desired) > 1)
        report.plans(plans)
        try:
            go = _approve(
                plans, reviewed, auto_approve=auto_approve, source=plan_file, report=report
            )
        except BaseException:
            report.finish([])
            raise
        if not go:
            report.finish([])
            return 0 if all(plan.is_empty for plan in plans) else 1
        results = session.apply(report.on_result)
    report.finish(results)
    return _exit_status(results)


# --- reviewed plan ids ------------------------------------------------------------------------


def _read_reviewed_file(plan_file: Path | None) -> dict[str, str] | None:
    if plan_file is None:
        return None
    from provisioner.workspace import read_plan_file

    return read_plan_file(plan_file)


def _parse_plan_ids(values: Sequence[str], apps: Sequence[DesiredApp]) -> dict[str, str] | None:
    """``--plan-id ID`` (one app) or ``--plan-id APP=ID`` (any number) → app name → id."""
    if not values:
        return None
    from provisioner.errors import ConfigError

    ids: dict[str, str] = {}
    for value in values:
        app, sep, plan_id = value.rpartition("=")
        if not sep:
            if len(apps) != 1 or len(values) != 1:
                raise ConfigError(
                    f"--plan-id {value} does not say which app it is for",
                    hint="with several apps, give --plan-id APP=ID once per app",
                )
            app = apps[0].name
        if app not in {desired.name for desired in apps}:
            raise ConfigError(
                f"--plan-id {value}: app {app} is not part of this run",
                hint="name the app on the command line, or fix the app name before '='",
            )
        ids[app] = plan_id.strip()
    return ids


def _approve(
    plans: Sequence[Plan],
    reviewed: Mapping[str, str] | None,
    *,
    auto_approve: bool,
    source: Path | None,
    report: _Report,
) -> bool:
    """Whether to apply: raises for a blocked plan (exit 3), a plan that is not the reviewed
    one, or no way to confirm; False for nothing to do or a declined confirmation."""
    from provisioner.apply_session import check_reviewed
    from provisioner.errors import ConfigError

    for plan in plans:
        plan.raise_if_blocked()
    if reviewed is not None:
        check_reviewed(plans, reviewed, source)
    if all(plan.is_empty for plan in plans):
        report.line("No changes.")
        return False
    if auto_approve or reviewed is not None:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(
            "refusing to apply without confirmation: standard input is not a terminal",
            hint="review the plan, then re-run with --auto-approve, or apply a reviewed plan"
            " with --plan FILE or --plan-id ID",
        )
    total = sum(len(plan.changes) for plan in plans)
    apps = sum(1 for plan in plans if not plan.is_empty)
    if click.confirm(
        f"Apply {total} change(s) to {apps} app(s)?", default=False, err=report.is_json
    ):
        return True
    report.line("Apply cancelled; nothing was changed.")
    return False


def _raise_planning_errors(errors: Sequence[AppError], *, several_apps: bool) -> None:
    """Stop when any app could not be planned. With one app its error is raised as it is
    (main prints it); with several, each error is printed naming its app, and the run exits
    with the last one's code."""
    if not errors:
        return
    if not several_apps:
        raise errors[0][1]
    for name, error in errors:
        echo_error(f"app {name}: {error.message}", hint=error.hint)
    raise click.exceptions.Exit(errors[-1][1].exit_code)


def _exit_status(results: Sequence[ApplyResult]) -> int:
    from provisioner.errors import ApplyError

    counts = {
        key: sum(result.counts[key] for result in results) for key in ("failed", "not_attempted")
    }
    if any(result.interrupted for result in results):
        echo_error(
            f"interrupted: calls in flight finished and were recorded;"
            f" {counts['not_attempted']} change(s) not attempted",
            hint="re-run `provisioner apply` to finish",
        )
        return EXIT_INTERRUPTED
    if counts["failed"] or counts["not_attempted"]:
        raise ApplyError(
            f"apply incomplete: {counts['failed']} failed, {counts['not_attempted']} not attempted",
            hint="the state holds exactly what was applied; fix the errors above and re-run"
            " `provisioner apply` to converge",
        )
    return 0


# --- output -----------------------------------------------------------------------------------


class _Report:
    """Prints plans, progress and the summary: text as it happens, json once at the end."""

    def __init__(self, output_format: str) -> None:
        self.is_json = output_format == "json"
        self._docs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if not self.is_json:
            click.echo(text)

    def plans(self, plans: Sequence[Plan]) -> None:
        from provisioner.render.plan import render_text

        self._docs = [plan.document for plan in plans]
        if not self.is_json:
            color = use_color()
            click.echo(render_text(self._docs, color=color), nl=False, color=color)

    def on_result(self, app: str, result: ChangeResult) -> None:
        if self.is_json:
            return
        from provisioner.render.apply import progress_line

        with self._lock:
            click.echo(progress_line(app, result))

    def finish(self, results: Sequence[ApplyResult]) -> None:
        if self.is_json:
            import json

            document = {
                "format_version": 1,
                "plans": self._docs,
                "applies": [result.data for result in results],
            }
            click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
            return
        from provisioner.render.apply import render_summary

        for result in results:
            click.echo(render_summary(result), nl=False)
