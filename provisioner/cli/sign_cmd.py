"""`provisioner sign` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("sign")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'sign' is not implemented yet")
