"""`provisioner schema`: write the published JSON Schemas for editors and other tools."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.export.scaffold import write_schemas
from provisioner.validate import display_path


@click.command("schema")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("schemas"),
    show_default=True,
    help="Folder to write bot.schema.json, app.schema.json and app-bundle.schema.json to.",
)
def command(out: Path) -> int:
    """Write the manifests' JSON Schemas (Draft 2020-12) into --out, replacing older copies.

    Manifests written by `init` and `export` point at them with a relative path on their
    first lines, which VS Code (YAML extension), other yaml-language-server editors and
    JetBrains IDEs read:

    \b
      # yaml-language-server: $schema=../../schemas/bot.schema.json
      # $schema: ../../schemas/bot.schema.json
    """
    for written in write_schemas(out, overwrite=True):
        click.echo(f"{written.status} {display_path(written.path)}")
    return 0
