"""Printing helpers shared by the commands (colour only on a TTY, NO_COLOR respected)."""

from __future__ import annotations

import os
import sys

import click


def use_color(stream: object = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set."""
    target = sys.stdout if stream is None else stream
    isatty = getattr(target, "isatty", None)
    return "NO_COLOR" not in os.environ and bool(isatty and isatty())


def echo_error(message: str, *, hint: str | None = None) -> None:
    """``error: message`` then ``  hint: ...`` on stderr."""
    color = use_color(sys.stderr)
    label = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{label} {message}", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)


def echo_app_error(app: str, message: str, *, hint: str | None = None) -> None:
    """``error: app NAME: message`` — unless the message already names the app."""
    named = f"app {app}" in message
    echo_error(message if named else f"app {app}: {message}", hint=hint)
