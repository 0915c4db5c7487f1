"""`provisioner probe APP`: observe what RongCloud's docs leave open, with probe bots."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provisioner.cli.options import bots_dir_option
from provisioner.cli.output import echo_error
from provisioner.connect import connect_reached
from provisioner.errors import ProvisionerError
from provisioner.rongcloud.observations import report_text
from provisioner.rongcloud.probe import Probe, Target
from provisioner.workspace import load_each


@click.command("probe")
@click.argument("app")
@bots_dir_option
@click.option("--yes", is_flag=True, help="Go ahead: create and delete probe-<random> bots.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the JSON report here too (for `emulator serve --profile FILE`).",
)
def command(app: str, bots_dir: Path, yes: bool, out_file: Path | None) -> int:
    """Observe, with probe bots, what APP's server does where RongCloud's docs are silent.

    Prints the JSON report: update replace or patch, unknown ids, duplicates, the quota,
    apiKey masking, the body limit, nonce reuse...

    It creates bots named probe-<random> (it needs room for two; an app holds at most 10)
    and deletes every one of them afterwards, also after a failure or Ctrl-C. Run it against
    a sandbox app. No secret is in the report.

    Exit status: 0 with the report, 1 when refused or when it failed (or left a probe bot
    behind: they are named), 130 after Ctrl-C and 143 after SIGTERM, once the clean-up is
    done (further signals do not stop it).

    \\b
    Examples:
      provisioner probe sandbox --yes --out probe.json
      provisioner emulator serve --profile probe.json
    """
    env = dict(os.environ)
    [loaded] = load_each([app], bots_dir, env=env)
    if loaded.error is not None:
        raise loaded.error
    assert loaded.app is not None
    with connect_reached(loaded.app, env) as (client, reached):
        probe = Probe(client, Target(reached.app_key, reached.app_secret, reached.hosts[0]))
        try:
            run = probe.run(yes=yes)
        except (KeyboardInterrupt, ProvisionerError):
            _left_behind(probe.left_behind)
            raise
    text = report_text(run.report)
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
    click.echo(text, nl=False)
    _left_behind(run.left_behind)
    return 1 if run.left_behind else 0


def _left_behind(user_ids: list[str]) -> None:
    if user_ids:
        echo_error(
            f"probe bots left behind: {', '.join(user_ids)}; delete each with `provisioner api"
            ' APP /v3/bot/delete.json \'{"userId": "ID"}\'`'
        )
