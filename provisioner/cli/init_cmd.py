"""`provisioner init`: start a new app folder with working schema modelines."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.options import bots_dir_option, credential_var_options, schemas_dir_option
from provisioner.errors import ConfigError
from provisioner.export.scaffold import (
    STATE_BACKENDS,
    check_endpoint,
    check_variable_name,
    credential_names,
    init_app,
    state_dsn_names,
)
from provisioner.validate import display_path


@click.command("init")
@click.argument("app")
@click.option(
    "--endpoint",
    default="local",
    show_default=True,
    help="local (the embedded emulator), a data center (cn, sg, sg-b, na, sa/sau), an"
    " https:// base URL, or ${NAME}.",
)
@click.option(
    "--state",
    "state",
    type=click.Choice(STATE_BACKENDS),
    help="Write app.yaml's state block for this backend: file (.provisioner/state/APP.json),"
    " git (the branch provisioner-state), postgres (dsn and readDsn as"
    " ${PROVISIONER_<APP>_STATE_DSN} and ${PROVISIONER_<APP>_STATE_READ_DSN}) or gitlab"
    " (GitLab-managed Terraform state). Default: no block, which is the file backend.",
)
@bots_dir_option
@schemas_dir_option
@credential_var_options
def command(
    app: str,
    endpoint: str,
    state: str | None,
    bots_dir: Path,
    schemas_dir: Path,
    app_key_var: str | None,
    app_secret_var: str | None,
) -> int:
    """Create bots/APP/ with app.yaml and one commented example bot.

    Both files start with schema modelines pointing at --schemas-dir (written there when
    missing), so editors validate and complete them. With an endpoint other than local,
    app.yaml references the App Key and App Secret as ${RONGCLOUD_<APP>_APP_KEY} and
    ${RONGCLOUD_<APP>_APP_SECRET} (or the names given). With --state, app.yaml names where
    the recorded state lives (docs/state.md).

    \b
    Example:
      provisioner init staging --endpoint cn --state git
      provisioner validate bots/staging && provisioner plan staging
    """
    folder = app_folder(bots_dir, app)
    key_var, secret_var = resolved_credential_vars(folder.name, app_key_var, app_secret_var)
    written = init_app(
        folder,
        endpoint=check_endpoint(endpoint),
        key_var=key_var,
        secret_var=secret_var,
        schemas_dir=schemas_dir,
        state=state,
    )
    for each in written:
        if each.status != "unchanged":
            click.echo(f"{each.status} {display_path(each.path)}")
    click.echo(f"Next: provisioner validate {display_path(folder)} && provisioner plan {app}")
    exports = [f"{key_var}=...", f"{secret_var}=..."] if endpoint != "local" else []
    if state == "postgres":
        exports.append(f"{state_dsn_names(folder.name)[0]}=...")
    if exports:
        click.echo(f"      (export {' '.join(exports)} first)")
    return 0


def app_folder(bots_dir: Path, app: str) -> Path:
    """``bots_dir/app`` for an app name (ConfigError for a name that is a path)."""
    if not app or "/" in app or "\\" in app or app in (".", "..") or app.startswith("."):
        raise ConfigError(
            f"app name {app!r} is not a folder name",
            hint="give the app's name (e.g. staging); it becomes the folder --bots-dir/NAME",
        )
    return bots_dir / app


def resolved_credential_vars(
    app: str, app_key_var: str | None, app_secret_var: str | None
) -> tuple[str, str]:
    """The variables app.yaml references: the options, else RONGCLOUD_<APP>_APP_KEY/SECRET."""
    default_key, default_secret = credential_names(app)
    return (
        check_variable_name("--app-key-var", app_key_var or default_key),
        check_variable_name("--app-secret-var", app_secret_var or default_secret),
    )
