"""`provisioner apply`: re-plan, show, decide per app, then apply the approved plans (see
docs/apply.md).

The plans and applies run in :mod:`provisioner.apply.session` (one thread per app, every API
call in one pool of --concurrency workers). This module shows every plan, decides per app —
an app that cannot be loaded or planned, whose plan is blocked by a safety rule, or whose
plan is not the reviewed one is refused on its own; the others go on — asks for confirmation
when nobody approved, prints the progress and the summary, and turns the outcomes into the
exit status: the worst app outcome, in the order 130/143 interrupted, 4 partial apply,
1 error or refused, 3 blocked, 0.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.cli.options import (
    allow_empty_option,
    bots_dir_option,
    concurrency_option,
    no_refresh_option,
    shard_option,
)
from provisioner.cli.output import (
    echo_app_error,
    echo_error,
    echo_load_warnings,
    mask,
    use_color,
)
from provisioner.exit_codes import worst

if TYPE_CHECKING:
    from provisioner.apply.results import ApplyResult, ChangeResult
    from provisioner.apply.session import Applied, Planned, Session
    from provisioner.apply.verdicts import Verdict
    from provisioner.errors import PlanError, ProvisionerError
    from provisioner.models import DesiredApp
    from provisioner.plan import Plan
    from provisioner.workspace import LoadedApp


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
@click.option(
    "--check",
    "preflight",
    is_flag=True,
    help="Run `provisioner check` first: a bot whose Dify integration fails gets no API call.",
)
@allow_empty_option
@no_refresh_option
@concurrency_option("Most API calls in flight at once (all apps together).")
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

    Exit status, the worst over the apps: 0 applied or no changes, 3 blocked by a safety
    rule, 1 error or refused (or a failed --check), 4 partial apply (re-run to converge), 130
    interrupted by Ctrl-C, 143 by SIGTERM.
    """
    from provisioner.apply.session import Session
    from provisioner.workspace import load_each

    if plan_file is not None and plan_ids:
        raise click.UsageError("give either --plan FILE or --plan-id, not both")
    reviewed_file = _read_reviewed_file(plan_file)
    names = list(apps) or (sorted(reviewed_file) if reviewed_file is not None else [])
    env = dict(os.environ)
    loaded = load_each(names, bots_dir, env=env, shard=shard)
    mask(secret for each in loaded for secret in each.secrets)
    echo_load_warnings(loaded)
    reviewed = reviewed_file if reviewed_file is not None else _parse_plan_ids(plan_ids, loaded)
    desired = [each.app for each in loaded if each.app is not None]
    report = _Report(output_format)
    held = _preflight(desired, env, report) if preflight else {}
    with Session(
        desired,
        env,
        refresh=not no_refresh,
        allow_empty=allow_empty,
        concurrency=concurrency,
        held=held,
    ) as session:
        verdicts = _verdicts(loaded, _watched_plans(session), reviewed, plan_file)
        report.plans(verdicts)
        go = _confirm(verdicts, auto_approve or reviewed is not None, report)
        applied = session.apply(lambda name: go and verdicts[name].ready, report.on_result)
        stop = session.stop.reason
    report.finish(verdicts, applied)
    if report.cancelled:
        return 1
    return worst([_exit_status(verdicts, applied, stop), 1 if held else 0])


def _preflight(
    desired: Sequence[DesiredApp], env: Mapping[str, str], report: _Report
) -> dict[str, dict[str, ProvisionerError]]:
    """``--check``: the pre-flight's findings printed (on stderr with --format json), and
    app → bot userId → the refusal of each bot that failed it."""
    from provisioner.check import CheckSettings, check_apps, refusals
    from provisioner.connect import retry_backoff
    from provisioner.render.diagnostics import render_text
    from provisioner.validate import diagnostic_order

    run = check_apps(desired, env, CheckSettings(backoff=retry_backoff(env)), base_dir=Path.cwd())
    findings = sorted((d for each in run.checked for d in each.diagnostics), key=diagnostic_order)
    if findings:
        click.echo(render_text(findings), err=report.is_json)
    for name, error in run.app_errors.items():
        echo_app_error(name, error.message, hint=error.hint)
    return refusals(run, desired)


def _watched_plans(session: Session) -> list[Planned]:
    """Every app's plan, with the progress of a multi-app run on stderr."""
    from provisioner.cli.progress import progress_for, watch_plans

    with progress_for("planned", [run.app.name for run in session.runs]) as progress:
        watch_plans(session, progress)
        return session.plans()


# --- deciding per app --------------------------------------------------------------------------


def _verdicts(
    loaded: Sequence[LoadedApp],
    planned: Sequence[Planned],
    reviewed: Mapping[str, str] | None,
    source: Path | None,
) -> dict[str, Verdict]:
    """Every app of the command line, in order (:func:`provisioner.apply.verdicts.decide`):
    a plan that is not the reviewed one (``--plan``/``--plan-id``) is refused."""
    from provisioner.apply.verdicts import decide
    from provisioner.plan.review import check_reviewed

    def review(plan: Plan) -> PlanError | None:
        return check_reviewed(plan, reviewed, source) if reviewed is not None else None

    errors = {each.name: each.error for each in loaded if each.error is not None}
    return decide([each.name for each in loaded], errors, planned, review)


def _confirm(verdicts: Mapping[str, Verdict], approved: bool, report: _Report) -> bool:
    """Whether the ready apps may go: approved (auto-approve or a reviewed plan), or yes on
    a terminal. ConfigError when nobody approved and there is no terminal to ask."""
    from provisioner.errors import ConfigError

    ready = [verdict for verdict in verdicts.values() if verdict.ready]
    if not ready:
        if all(v.refusal is None for v in verdicts.values()):
            report.line("No changes.")
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
        f"Apply {total} change(s) to {len(ready)} app(s)?", default=False, err=report.is_json
    ):
        return True
    report.line("Apply cancelled; nothing was changed.")
    report.cancelled = True
    return False


def _read_reviewed_file(plan_file: Path | None) -> dict[str, str] | None:
    if plan_file is None:
        return None
    from provisioner.plan.review import read_plan_file

    return read_plan_file(plan_file)


def _parse_plan_ids(values: Sequence[str], apps: Sequence[LoadedApp]) -> dict[str, str] | None:
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
        if app not in {each.name for each in apps}:
            raise ConfigError(
                f"--plan-id {value}: app {app} is not part of this run",
                hint="name the app on the command line, or fix the app name before '='",
            )
        ids[app] = plan_id.strip()
    return ids


# --- the outcome ----------------------------------------------------------------------------


def _exit_status(
    verdicts: Mapping[str, Verdict], applied: Sequence[Applied], stop: str | None
) -> int:
    """The worst app outcome (see the module docstring); prints the closing error line."""
    from provisioner.apply.verdicts import run_outcome

    outcome = run_outcome(verdicts, applied, stop)
    if outcome.closing is not None:
        echo_error(outcome.closing.message, hint=outcome.closing.hint)
    return outcome.code


class _Report:
    """Prints plans, refusals, progress and the summary: text as it happens, json once at
    the end."""

    def __init__(self, output_format: str) -> None:
        self.is_json = output_format == "json"
        self.cancelled = False
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if not self.is_json:
            click.echo(text)

    def plans(self, verdicts: Mapping[str, Verdict]) -> None:
        """Every plan, then the refusal of each refused app (``error: app NAME: ...``)."""
        if self.is_json:
            return
        from provisioner.render.plan import render_text

        docs = [verdict.plan.document for verdict in verdicts.values() if verdict.plan]
        color = use_color()
        click.echo(render_text(docs, color=color), nl=False, color=color)
        for verdict in verdicts.values():
            if verdict.refusal is not None:
                error = verdict.refusal
                echo_app_error(verdict.name, error.message, hint=error.hint)

    def on_result(self, app: str, result: ChangeResult) -> None:
        if self.is_json:
            return
        from provisioner.render.apply import progress_line

        with self._lock:
            click.echo(progress_line(app, result))

    def finish(self, verdicts: Mapping[str, Verdict], applied: Sequence[Applied]) -> None:
        results = [each.result for each in applied if each.result is not None]
        if self.is_json:
            click.echo(_json_document(verdicts, applied, results))
            return
        from provisioner.render.apply import render_summary

        for result in results:
            click.echo(render_summary(result), nl=False)
        for each in applied:
            if each.error is not None:
                echo_app_error(each.app, each.error.message, hint=each.error.hint)


def _json_document(
    verdicts: Mapping[str, Verdict], applied: Sequence[Applied], results: Sequence[ApplyResult]
) -> str:
    import json

    from provisioner.apply.results import error_data

    document: dict[str, Any] = {
        "format_version": 1,
        "plans": [verdict.plan.document for verdict in verdicts.values() if verdict.plan],
        "applies": [result.data for result in results],
        "refused": [
            {"app": verdict.name, "error": error_data(verdict.refusal)}
            for verdict in verdicts.values()
            if verdict.refusal is not None
        ]
        + [{"app": each.app, "error": error_data(each.error)} for each in applied if each.error],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
