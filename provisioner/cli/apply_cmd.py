"""`provisioner apply` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("apply")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'apply' is not implemented yet")
