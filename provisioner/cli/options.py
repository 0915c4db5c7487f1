"""Options shared by several commands, declared once so their flags and help agree."""

from __future__ import annotations

from pathlib import Path

import click

bots_dir_option = click.option(
    "--bots-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("bots"),
    show_default=True,
    help="Folder of app folders.",
)

allow_empty_option = click.option(
    "--allow-empty", is_flag=True, help="Allow a plan that deletes every managed bot of an app."
)

no_refresh_option = click.option(
    "--no-refresh",
    is_flag=True,
    help="Plan from the recorded state only; no API call (no drift, no adoption).",
)
