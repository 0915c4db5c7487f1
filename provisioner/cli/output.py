"""Printing helpers shared by the commands (colour only on a TTY, NO_COLOR respected)."""

from __future__ import annotations

import logging
import os
import sys

import click

STATE_LOGGER = "provisioner.state"
"""Where the state backends log what the user must be told (a lock taken over, ...)."""


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


def echo_warning(message: str) -> None:
    """``warning: message`` on stderr."""
    color = use_color(sys.stderr)
    label = click.style("warning:", fg="yellow", bold=True) if color else "warning:"
    click.echo(f"{label} {message}", err=True)


class _WarningHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        echo_warning(record.getMessage())


def show_state_notices() -> None:
    """Print the state backends' notices (WARNING records of ``provisioner.state``) as
    ``warning: ...`` lines, for every command (installed once)."""
    logger = logging.getLogger(STATE_LOGGER)
    if not any(isinstance(handler, _WarningHandler) for handler in logger.handlers):
        logger.addHandler(_WarningHandler(logging.WARNING))
