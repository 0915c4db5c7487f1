"""`provisioner apply`: re-plan, show, decide per app, then apply the approved plans (see
docs/apply.md).

The run is :func:`provisioner.apply.run.apply_apps` (the skeleton `github apply` shares):
apps in lanes bounded by --concurrency, every API call in one pool of --concurrency workers;
an app that cannot be loaded or planned, whose plan is blocked by a safety rule, or whose
plan is not the reviewed one is refused on its own, the others go on. This module brings the
command's rule — the plan file or --plan-id, and the confirmation asked when nobody approved — and
its output (:class:`ApplyPrinter`): the progress, the plans, the summary, and the exit
status: the worst app outcome, in the order 130/143 interrupted, 4 partial apply, 1 error or
refused, 3 blocked, 0.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import click

from provisioner.apply.results import ApplyResult, ChangeResult, error_data
from provisioner.apply.run import ApplyRun, ReviewRule, apply_apps
from provisioner.apply.session import Session
from provisioner.apply.verdicts import Review, Verdict
from provisioner.check import CheckSettings, check_apps, refusals
from provisioner.cli.notifying import send_notifications
from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    env_file_option,
    lock_timeout_option,
    no_refresh_option,
    shard_option,
)
from provisioner.cli.output import (
    echo_app_error,
    echo_error,
    echo_load_warnings,
    echo_warning,
    mask,
    use_color,
)
from provisioner.cli.progress import progress_for, watch_plans
from provisioner.connect import retry_backoff
from provisioner.diagnostics import diagnostic_order
from provisioner.errors import ConfigError, PlanError, ProvisionerError
from provisioner.exit_codes import worst
from provisioner.notify import apply_summaries
from provisioner.plan import FORMAT_VERSION, Plan, PlanDoc
from provisioner.plan.review import check_reviewed, read_plan_file
from provisioner.render import diagnostics as render_diagnostics
from provisioner.render.apply import progress_line, render_summary
from provisioner.render.fleet import plan_text
from provisioner.state.holder import ci_run_url
from provisioner.workspace import LoadedApp, load_each


@click.command("apply")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
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
@click.option(
    "--check",
    "preflight",
    is_flag=True,
    help="Run `provisioner check` first: a bot whose Dify integration fails gets no API call.",
)
@allow_empty_option
@no_refresh_option
@concurrency_option("Most API calls in flight at once (all apps together).")
@lock_timeout_option
@shard_option
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
    preflight: bool,
    allow_empty: bool,
    no_refresh: bool,
    concurrency: int,
    lock_timeout: float | None,
    shard: tuple[int, int] | None,
    output_format: str,
) -> int:
    """Apply the manifests of each APP (default: every app under --bots-dir; with --plan,
    the apps in the plan file).

    Re-plans, shows the plan, asks for confirmation on a terminal, then makes the API calls
    (deletes first) and records each success in the state. A saved plan (--plan FILE or
    --plan-id) counts as approved, and an app whose fresh plan differs from it is refused.
    Apps are independent: one that cannot be planned, is blocked or is refused does not stop
    the others. With --check the Dify pre-flight (`provisioner check`) runs first: a bot whose
    Dify integration fails it gets no call (its change fails), the rest of its app applies.

    Tells each app's `notify:` targets what was applied (apply) or what failed (failure); a
    target that cannot be reached is a warning and leaves the exit status as it is.

    Exit status, the worst over the apps: 0 applied or no changes, 3 blocked by a safety
    rule, 1 error or refused (or a failed --check), 4 partial apply (re-run to converge), 130
    interrupted by Ctrl-C, 143 by SIGTERM.
    """
    if plan_file is not None and plan_ids:
        raise click.UsageError("give either --plan FILE or --plan-id, not both")
    reviewed_file = read_plan_file(plan_file) if plan_file is not None else None
    env = dict(os.environ)
    loaded = load_each(list(apps) or sorted(reviewed_file or {}), bots_dir, env=env, shard=shard)
    mask(secret for each in loaded for secret in each.secrets)
    echo_load_warnings(loaded)
    reviewed = reviewed_file if reviewed_file is not None else _parse_plan_ids(plan_ids, loaded)
    show = ApplyPrinter(output_format)
    held = _preflight(loaded, env, show) if preflight else {}
    approve = partial(_confirm, approved=auto_approve or reviewed is not None, show=show)
    run = apply_apps(
        loaded,
        env,
        ReviewRule(_review(reviewed, plan_file), approve=approve),
        show,
        refresh=not no_refresh,
        allow_empty=allow_empty,
        concurrency=concurrency,
        held=held,
        lock_timeout=lock_timeout,
    )
    summaries = [each.linked(ci_run_url(env)) for each in apply_summaries(run)]
    send_notifications(summaries, loaded, env, echo_warning)
    return _finish(run, show, held=bool(held))


def _finish(run: ApplyRun, show: ApplyPrinter, *, held: bool) -> int:
    """The json document, then the exit status (see the module docstring) and its closing
    line; a failed --check (``held``) fails the run."""
    if show.is_json:
        click.echo(_json_document(run))
    if show.cancelled:
        return 1
    if run.closing is not None:
        echo_error(run.closing.message, hint=run.closing.hint)
    return worst([run.code, 1 if held else 0])


def _preflight(
    loaded: Sequence[LoadedApp], env: Mapping[str, str], show: ApplyPrinter
) -> dict[str, dict[str, ProvisionerError]]:
    """``--check``: the pre-flight's findings printed (on stderr with --format json), and
    app → bot userId → the refusal of each bot that failed it."""
    desired = [each.app for each in loaded if each.app is not None]
    run = check_apps(desired, env, CheckSettings(backoff=retry_backoff(env)), base_dir=Path.cwd())
    findings = sorted((d for each in run.checked for d in each.diagnostics), key=diagnostic_order)
    if findings:
        click.echo(render_diagnostics.render_text(findings), err=show.is_json)
    for name, error in run.app_errors.items():
        echo_app_error(name, error.message, hint=error.hint)
    return refusals(run, desired)


# --- the command's rule -----------------------------------------------------------------------


def _review(reviewed: Mapping[str, str] | None, source: Path | None) -> Review | None:
    """A plan that is not the reviewed one (``--plan``/``--plan-id``) is refused."""
    if reviewed is None:
        return None

    def review(plan: Plan) -> PlanError | None:
        return check_reviewed(plan, reviewed, source)

    return review


def _confirm(verdicts: Mapping[str, Verdict], *, approved: bool, show: ApplyPrinter) -> bool:
    """Whether the ready apps may go: approved (auto-approve or a reviewed plan), or yes on
    a terminal. ConfigError when nobody approved and there is no terminal to ask."""
    ready = [verdict for verdict in verdicts.values() if verdict.ready]
    if not ready:
        if all(v.refusal is None for v in verdicts.values()):
            show.line("No changes.")
        return False
    if approved:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(
            "refusing to apply without confirmation: standard input is not a terminal",
            hint="review the plan, then re-run with --auto-approve, or apply a reviewed plan"
            " with --plan FILE or --plan-id ID",
        )
    total = sum(len(verdict.plan.changes) for verdict in ready if verdict.plan is not None)
    if click.confirm(
        f"Apply {total} change(s) to {len(ready)} app(s)?", default=False, err=show.is_json
    ):
        return True
    show.line("Apply cancelled; nothing was changed.")
    show.cancelled = True
    return False


def _parse_plan_ids(values: Sequence[str], apps: Sequence[LoadedApp]) -> dict[str, str] | None:
    """``--plan-id ID`` (one app) or ``--plan-id APP=ID`` (any number) → app name → id."""
    if not values:
        return None
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
        if app not in {each.name for each in apps}:
            raise ConfigError(
                f"--plan-id {value}: app {app} is not part of this run",
                hint="name the app on the command line, or fix the app name before '='",
            )
        ids[app] = plan_id.strip()
    return ids


# --- the output -------------------------------------------------------------------------------


class ApplyPrinter:
    """What an apply shows (:class:`provisioner.apply.run.Printer`): the progress of the
    planning on stderr, then the plans, refusals, progress lines and summaries as they
    happen; with --format json nothing more on stdout until one document at the end."""

    def __init__(self, output_format: str = "text") -> None:
        self.is_json = output_format == "json"
        self.cancelled = False
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if not self.is_json:
            click.echo(text)

    @contextmanager
    def planning(self, session: Session) -> Iterator[None]:
        """The progress of a multi-app run on stderr."""
        with progress_for("planned", [run.app.name for run in session.runs]) as progress:
            watch_plans(session, progress)
            yield

    def plans(self, docs: Sequence[PlanDoc]) -> None:
        if not self.is_json:
            color = use_color()
            click.echo(plan_text(docs, color=color), nl=False, color=color)

    def refused(self, app: str, error: ProvisionerError) -> None:
        """``error: app NAME: ...``."""
        if not self.is_json:
            echo_app_error(app, error.message, hint=error.hint)

    def progress(self, app: str, result: ChangeResult) -> None:
        if not self.is_json:
            with self._lock:  # from the app threads
                click.echo(progress_line(app, result))

    def summary(self, result: ApplyResult) -> None:
        if not self.is_json:
            click.echo(render_summary(result), nl=False)


def _json_document(run: ApplyRun) -> str:
    verdicts = run.verdicts.values()
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "plans": run.docs,
        "applies": [each.result.data for each in run.applied if each.result is not None],
        "refused": [
            {"app": verdict.name, "error": error_data(verdict.refusal)}
            for verdict in verdicts
            if verdict.refusal is not None
        ]
        + [
            {"app": each.app, "error": error_data(each.error)} for each in run.applied if each.error
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
