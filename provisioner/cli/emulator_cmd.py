"""`provisioner emulator` (not implemented yet)."""

from __future__ import annotations

import click


@click.command("emulator")
def command() -> int:
    """Not implemented yet."""
    raise click.UsageError("'emulator' is not implemented yet")
