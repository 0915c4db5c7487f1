"""`provisioner validate` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("validate")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'validate' is not implemented yet")
