"""`provisioner schema`: write the published JSON Schemas for editors and other tools."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.export.scaffold import OUTPUT_SCHEMA_NAMES, SCHEMA_NAMES, write_schemas
from provisioner.validate import display_path


@click.command("schema")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("schemas"),
    show_default=True,
    help="Folder to write the schemas to: bot, app and app-bundle (the manifests'), plan, "
    "drift and check (the JSON outputs'), each NAME.schema.json.",
)
def command(out: Path) -> int:
    """Write the JSON Schemas (Draft 2020-12) of the manifests and the JSON outputs into --out.

    The manifests' (bot, app, app-bundle) replace older copies, and so do those of the JSON
    outputs (plan: `plan --format json` and `--out`; drift: `drift --format json`; check:
    `check --format json`), for policy checks such as conftest (docs/workflow.md).

    Manifests written by `init` and `export` point at them with a relative path on their
    first lines, which VS Code (YAML extension), other yaml-language-server editors and
    JetBrains IDEs read:

    \b
      # yaml-language-server: $schema=../../schemas/bot.schema.json
      # $schema: ../../schemas/bot.schema.json
    """
    names = (*SCHEMA_NAMES, *OUTPUT_SCHEMA_NAMES)
    for written in write_schemas(out, overwrite=True, names=names):
        click.echo(f"{written.status} {display_path(written.path)}")
    return 0
