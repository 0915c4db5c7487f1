"""`provisioner check`: the Dify pre-flight of every Dify integration (and, with --converse,
a real two-message conversation); see docs/check.md."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from provisioner.apply.results import error_data
from provisioner.check import Checked, CheckRun, CheckSettings, check_apps
from provisioner.cli.options import bots_dir_option, env_file_option
from provisioner.cli.output import echo_app_error, use_color
from provisioner.connect import retry_backoff
from provisioner.diagnostics import Diagnostic
from provisioner.dify.protocol import MODE_NAMES
from provisioner.render.diagnostics import render_github, render_text
from provisioner.validate import diagnostic_order
from provisioner.workspace import LoadedApp, load_each

SHORT_TEXT = 60
_COLORS = {"error": "red", "warning": "yellow"}


@click.command("check")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for workflow annotations.",
)
@click.option(
    "--converse",
    is_flag=True,
    help="Also send each app two real messages (costs tokens) and check the conversation.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=15.0,
    show_default=True,
    help="Seconds to connect and for each read (keep it above Dify's 10 s stream pings).",
)
def command(
    apps: tuple[str, ...], bots_dir: Path, output_format: str, converse: bool, timeout: float
) -> int:
    """Check the Dify integrations of each APP (default: every app under --bots-dir).

    For each enabled Dify integration, in parallel and with no side effects: the key works
    (GET /info), the app's mode fits the integration type (and stream), the app is published
    and RongCloud can fill its required inputs (GET /parameters). Needs the Dify keys only,
    not the RongCloud secret. With endpoint: local the calls go to the app's Dify stand-in
    (emulator.dify in app.yaml), so nothing leaves the machine.

    Exit status: 0 when every integration passes (warnings allowed), 1 otherwise.

    \b
    Examples:
      provisioner check                      # every app under bots/
      provisioner check production --format github
      provisioner check demo --converse      # two real messages per integration
    """
    env = dict(os.environ)
    loaded = load_each(list(apps), bots_dir, env=env)
    settings = CheckSettings(timeout=timeout, backoff=retry_backoff(env), converse=converse)
    desired = [each.app for each in loaded if each.app is not None]
    run = check_apps(desired, env, settings, base_dir=Path.cwd())
    diagnostics = _diagnostics(loaded, run)
    failed = run.failed or any(each.app is None for each in loaded)
    if output_format == "json":
        click.echo(_json_document(loaded, run, diagnostics, failed))
    elif output_format == "github":
        if diagnostics:
            click.echo(render_github(diagnostics))
    else:
        _print_text(loaded, run, diagnostics)
    for name, error in run.app_errors.items():
        echo_app_error(name, error.message, hint=error.hint)
    return 1 if failed else 0


def _diagnostics(loaded: Sequence[LoadedApp], run: CheckRun) -> list[Diagnostic]:
    found = [d for each in loaded for d in each.problems]  # why an app was not checked
    found += [d for checked in run.checked for d in checked.diagnostics]
    return sorted(set(found), key=diagnostic_order)


# --- text ---------------------------------------------------------------------------------


def _print_text(loaded: Sequence[LoadedApp], run: CheckRun, diagnostics: list[Diagnostic]) -> None:
    color = use_color()
    if diagnostics:
        click.echo(render_text(diagnostics, style=lambda text, sev: _style(text, sev, color)))
    for each in loaded:
        if each.app is None:
            click.echo(f"{each.name}: not checked: its manifests have errors")
    for checked in run.checked:
        click.echo(_status_line(checked))
        if checked.conversation is not None:
            for line in _conversation_lines(checked):
                click.echo(line)
    click.echo(_summary(run, unchecked=sum(1 for each in loaded if each.app is None)))


def _style(text: str, severity: str, color: bool) -> str:
    return click.style(text, fg=_COLORS.get(severity), bold=True) if color else text


def _status_line(checked: Checked) -> str:
    """``demo/assistant-bot dify_chatflow: passed (Chatflow app "Assistant")``."""
    errors = sum(1 for d in checked.diagnostics if d.severity == "error")
    warnings = len(checked.diagnostics) - errors
    verdict = "failed" if errors else "passed"
    counts = [_count(errors, "error"), _count(warnings, "warning")]
    shown = ", ".join(part for part in counts if part)
    outcome = checked.outcome
    app = ""
    if outcome.name is not None:
        kind = MODE_NAMES.get(outcome.mode or "", "Dify")
        app = f"{kind} app {_quoted(outcome.name)}"
    details = "; ".join(part for part in (shown, app) if part)
    return f"{checked.target.label}: {verdict}" + (f" ({details})" if details else "")


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}" if number else ""


def _conversation_lines(checked: Checked) -> list[str]:
    conversation = checked.conversation
    assert conversation is not None
    lines = []
    for number, exchange in enumerate(conversation.exchanges, start=1):
        reply = exchange.reply
        first = reply.first_token_seconds
        timing = f" (first token after {first * 1000:.0f} ms)" if first is not None else ""
        lines.append(
            f"  {number}. {_quoted(_short(exchange.text))} → {_quoted(_short(reply.answer))}"
            + timing
        )
    if conversation.kept:
        conversation_id = conversation.exchanges[-1].reply.conversation_id
        lines.append(f"  conversation kept (conversation_id {conversation_id})")
    return lines


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHORT_TEXT else flat[: SHORT_TEXT - 1] + "…"


def _quoted(text: str) -> str:
    return f'"{text}"'


def _summary(run: CheckRun, *, unchecked: int) -> str:
    """``Checked 3 Dify integrations: 2 passed, 1 failed.`` (and the apps not checked)."""
    total = len(run.checked)
    unchecked += len(run.app_errors)
    apps = f" {_count(unchecked, 'app')} not checked." if unchecked else ""
    if not total:
        return (
            ("No Dify integration was checked." + apps)
            if apps
            else ("No enabled Dify integrations to check.")
        )
    failed = sum(1 for each in run.checked if each.failed)
    checked = _count(total, "Dify integration")
    return f"Checked {checked}: {total - failed} passed, {failed} failed.{apps}"


# --- json ---------------------------------------------------------------------------------


def _json_document(
    loaded: Sequence[LoadedApp], run: CheckRun, diagnostics: list[Diagnostic], failed: bool
) -> str:
    document: dict[str, Any] = {
        "format_version": 1,
        "passed": not failed,
        "diagnostics": [d.data for d in diagnostics],
        "integrations": [_integration_data(checked) for checked in run.checked],
        "unchecked": [
            {"app": each.name, "reason": "its manifests have errors"}
            for each in loaded
            if each.app is None
        ]
        + [{"app": name, "error": error_data(error)} for name, error in run.app_errors.items()],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _integration_data(checked: Checked) -> dict[str, Any]:
    target = checked.target
    line, column = target.position()
    data: dict[str, Any] = {
        "app": target.app,
        "userId": target.bot.userId,
        "type": target.integration.type,
        "file": target.file,
        "line": line,
        "column": column,
        "passed": not checked.failed,
        "dify": {"name": checked.outcome.name, "mode": checked.outcome.mode},
    }
    conversation = checked.conversation
    if conversation is not None:
        data["conversation"] = {
            "kept": conversation.kept,
            "messages": [
                {
                    "text": exchange.text,
                    "answer": exchange.reply.answer,
                    "conversationId": exchange.reply.conversation_id,
                    "firstTokenSeconds": exchange.reply.first_token_seconds,
                }
                for exchange in conversation.exchanges
            ],
        }
    return data
