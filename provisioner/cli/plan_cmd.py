"""`provisioner plan` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("plan")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'plan' is not implemented yet")
