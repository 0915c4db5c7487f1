"""Printing helpers shared by the commands.

Colour: on a terminal only, unless ``FORCE_COLOR`` is set (not empty: CI logs that render
colour); never when ``NO_COLOR`` is set (not empty), which wins over ``FORCE_COLOR``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from provisioner.diagnostics import Diagnostic
    from provisioner.workspace import LoadedApp

_SEVERITY_COLORS = {"error": "red", "warning": "yellow"}


def is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_color(stream: object = None) -> bool:
    """Colour for a terminal or with ``FORCE_COLOR``; never with ``NO_COLOR`` (module doc)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(sys.stdout if stream is None else stream)


def styled_severity(text: str, severity: str, color: bool) -> str:
    """``text`` in the colour of ``severity`` (error red, warning yellow) when ``color``."""
    return click.style(text, fg=_SEVERITY_COLORS.get(severity), bold=True) if color else text


def echo_diagnostics(diagnostics: Iterable[Diagnostic], *, err: bool = False) -> None:
    """Diagnostics in validate's text format (``file:line:col: severity: path: message``)."""
    from provisioner.render.diagnostics import render_text
    from provisioner.validate import diagnostic_order

    ordered = sorted(diagnostics, key=diagnostic_order)
    if not ordered:
        return
    color = use_color(sys.stderr if err else sys.stdout)
    text = render_text(ordered, style=lambda part, severity: styled_severity(part, severity, color))
    click.echo(text, err=err, color=color)


def echo_load_warnings(loaded: Sequence[LoadedApp]) -> None:
    """The validation warnings of the apps a command loaded, on stderr."""
    echo_diagnostics((warning for each in loaded for warning in each.warnings), err=True)


def echo_error(message: str, *, hint: str | None = None) -> None:
    """``error: message`` then ``  hint: ...`` on stderr."""
    color = use_color(sys.stderr)
    label = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{label} {message}", err=True, color=color)
    if hint:
        click.echo(f"  hint: {hint}", err=True)


def echo_app_error(app: str, message: str, *, hint: str | None = None) -> None:
    """``error: app NAME: message`` — unless the message already names the app."""
    named = f"app {app}" in message
    echo_error(message if named else f"app {app}: {message}", hint=hint)
