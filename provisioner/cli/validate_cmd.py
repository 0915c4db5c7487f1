"""`provisioner validate`: check manifests against RongCloud's limits before anything is sent."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from provisioner.cli.options import env_file_option
from provisioner.cli.output import echo_diagnostics
from provisioner.diagnostics import Diagnostic, diagnostic_order, has_errors
from provisioner.render.diagnostics import render_codequality, render_github, render_json
from provisioner.validate import (
    AppValidation,
    app_folders_of,
    discover_apps,
    display_path,
    validate_apps,
)


@click.command("validate")
@click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path(path_type=Path))
@env_file_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github", "codequality"]),
    default="text",
    show_default=True,
    help="text for people, json for tools, github for workflow annotations on the PR,"
    " codequality for GitLab's Code Quality report (artifacts:reports:codequality).",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too (e.g. plain http:// URLs).")
@click.option(
    "--require-env",
    is_flag=True,
    help="Also check that every ${NAME} referenced is set (names it; never prints values).",
)
@click.option(
    "--expand-files",
    is_flag=True,
    help="A PATH that is a file stands for its whole app folder (for the pre-commit hook).",
)
def command(
    paths: tuple[Path, ...], output_format: str, strict: bool, require_env: bool, expand_files: bool
) -> int:
    """Validate the bot manifests of every app under PATH... (default: bots).

    A PATH is a folder of app folders (bots) or one app folder (bots/demo). Every problem of
    every file is reported in one run with file:line:column, the field path and a hint: YAML
    traps, RongCloud's limits (lengths, 10 bots per app, Dify rules), unknown keys, literal
    secrets. No environment is needed unless --require-env is given.

    Exit status: 0 when valid, 1 when any error (or, with --strict, any warning) is found.

    \b
    Examples:
      provisioner validate                       # every app under bots/
      provisioner validate bots/staging --strict
      provisioner validate --format github       # annotations in GitHub Actions
      provisioner validate --format codequality > gl-code-quality-report.json   # GitLab
      provisioner validate --require-env         # in CI, with the secrets exported
      provisioner validate --expand-files bots/demo/assistant.yaml   # as pre-commit runs it
    """
    env = dict(os.environ) if require_env else None
    if expand_files:
        paths = tuple(app_folders_of(paths))
    results = validate_apps(discover_apps(paths or (Path("bots"),)), env=env)
    diagnostics = sorted(
        (d for result in results for d in result.diagnostics), key=diagnostic_order
    )
    _echo(results, diagnostics, output_format, strict)
    return 1 if has_errors(diagnostics, strict=strict) else 0


def _echo(
    results: Sequence[AppValidation],
    diagnostics: Sequence[Diagnostic],
    output_format: str,
    strict: bool,
) -> None:
    """The findings in ``output_format``; as text, then one summary line per app."""
    if output_format == "json":
        click.echo(render_json(diagnostics))
    elif output_format == "codequality":
        click.echo(render_codequality(diagnostics))
    elif output_format == "github":
        if diagnostics:
            click.echo(render_github(diagnostics))
    else:
        echo_diagnostics(diagnostics)
        for result in results:
            click.echo(_summary(result, strict))


def _summary(result: AppValidation, strict: bool) -> str:
    """``bots/demo: 3 bots valid``, ``bots/demo: 5 errors in 1 of 2 bots`` or
    ``bots/demo: 1 error in app.yaml``: where the findings are, among the app's bots."""

    def count(number: int, word: str) -> str:
        return f"{number} {word}{'' if number == 1 else 's'}"

    name = display_path(result.folder)
    errors, warnings, bots = result.errors, result.warnings, len(result.files)
    if errors or (strict and warnings):
        parts = [count(errors, "error")] if errors else []
        if warnings:
            parts.append(count(warnings, "warning"))
        counted = {"error", "warning"} if strict else {"error"}
        found = {d.file for d in result.diagnostics if d.severity in counted}
        places = [Path(file).name for file in sorted(found - set(result.files))]
        if found & set(result.files) or not places:
            places.append(f"{len(found & set(result.files))} of {count(bots, 'bot')}")
        return f"{name}: {', '.join(parts)} in {' and '.join(places)}"
    suffix = f" ({count(warnings, 'warning')})" if warnings else ""
    return f"{name}: {count(bots, 'bot')} valid{suffix}"
