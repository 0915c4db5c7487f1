"""`provisioner state` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("state")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'state' is not implemented yet")
