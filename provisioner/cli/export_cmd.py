"""`provisioner export`: the bots on the server -> manifests (see provisioner/export/bots.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from provisioner.cli.init_cmd import app_folder
from provisioner.cli.options import (
    bots_dir_option,
    concurrency_option,
    credential_var_options,
    env_file_option,
    schemas_dir_option,
)
from provisioner.cli.output import echo_app_error
from provisioner.cli.progress import progress_for
from provisioner.export.bots import (
    AppExport,
    NewApp,
    create_secrets_file,
    export_app,
    write_secrets,
)
from provisioner.export.scaffold import check_endpoint, check_variable_name
from provisioner.render.safe import terminal_safe
from provisioner.validate import display_path


@click.command("export")
@click.argument("apps", nargs=-1, required=True)
@bots_dir_option
@env_file_option
@click.option(
    "--endpoint",
    help="For an app folder without app.yaml: write one for this endpoint (local, a data"
    " center such as cn, or a base URL).",
)
@credential_var_options
@click.option("--merge", is_flag=True, help="Update existing manifests in place.")
@click.option(
    "--secrets-to",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the Dify keys the API returns in plain text to this new dotenv file"
    " (mode 600; refused if it exists).",
)
@schemas_dir_option
@concurrency_option("Most apps exported at once.")
def command(
    apps: tuple[str, ...],
    bots_dir: Path,
    endpoint: str | None,
    app_key_var: str | None,
    app_secret_var: str | None,
    merge: bool,
    secrets_to: Path | None,
    schemas_dir: Path,
    concurrency: int,
) -> int:
    """Write one manifest per bot of each APP as the server holds it.

    Credentials come from bots/APP/app.yaml; for a new folder pass --endpoint, and export
    writes app.yaml first (referencing ${RONGCLOUD_<APP>_APP_KEY} and
    ${RONGCLOUD_<APP>_APP_SECRET}, or --app-key-var/--app-secret-var). Files are named after
    the userId; auth.apiKey becomes ${DIFY_<APP>_<USERID>_<KIND>_KEY}, listed at the end.
    Without --merge an app folder must hold no bot manifests yet; with --merge existing
    manifests are updated in place (comments, key order and layout kept, only differing
    fields changed), new bots get new files, and bots no longer on the server are reported,
    never deleted.

    Afterwards `validate` passes, `plan` shows adoptions only and `apply` adopts them without
    a write call. Exit status: 0 exported, 1 any app failed.

    \b
    Examples:
      provisioner export production --endpoint cn --secrets-to .env.dify
      provisioner export staging production --merge
    """
    new_app = NewApp(
        endpoint=check_endpoint(endpoint) if endpoint is not None else None,
        key_var=_checked_var("--app-key-var", app_key_var),
        secret_var=_checked_var("--app-secret-var", app_secret_var),
    )
    folders = [_folder(bots_dir, app) for app in apps]
    secrets_file = create_secrets_file(secrets_to) if secrets_to is not None else None
    exports = _export_all(folders, new_app, merge, schemas_dir, concurrency)
    saved = write_secrets(secrets_file, exports) if secrets_file is not None else None
    for result in exports:
        _report(result)
    _report_secrets(exports, secrets_to, saved)
    return 1 if any(result.error for result in exports) else 0


def _checked_var(option: str, name: str | None) -> str | None:
    return check_variable_name(option, name) if name is not None else None


def _folder(bots_dir: Path, app: str) -> Path:
    path = Path(app)
    if ("/" in app or os.sep in app) and path.is_dir():
        return path
    return app_folder(bots_dir, app)


def _export_all(
    folders: Sequence[Path], new_app: NewApp, merge: bool, schemas_dir: Path, concurrency: int
) -> list[AppExport]:
    env = dict(os.environ)
    progress = progress_for("exported", [folder.absolute().name for folder in folders])

    def one(folder: Path) -> AppExport:
        result = export_app(folder, env, new_app=new_app, merge=merge, schemas_dir=schemas_dir)
        if result.error is not None:
            progress.finished(result.name, terminal_safe(f"error: {result.error.message}"), False)
        else:
            progress.finished(result.name, f"{result.bots} bot(s)")
        return result

    if len(folders) == 1:
        return [one(folders[0])]
    with progress, ThreadPoolExecutor(concurrency, thread_name_prefix="export") as pool:
        return list(pool.map(one, folders))


def _report(result: AppExport) -> None:
    if result.error is not None:
        for written in result.files:
            click.echo(terminal_safe(f"  {written.status} {display_path(written.path)}"))
        echo_app_error(result.name, result.error.message, hint=result.error.hint)
        return
    noun = "bot" if result.bots == 1 else "bots"
    click.echo(f"Exported app {result.name}: {result.bots} {noun}")
    for written in result.files:
        click.echo(terminal_safe(f"  {written.status} {display_path(written.path)}"))
    for user_id, file in result.gone:
        click.echo(
            terminal_safe(
                f"  ! {file}: {user_id} is not on the server (file left in place: plan would"
                " create it; delete the file if the bot is gone for good)"
            )
        )


def _report_secrets(
    exports: Sequence[AppExport], secrets_to: Path | None, saved: tuple[int, int] | None
) -> None:
    secrets = [(result.name, secret) for result in exports for secret in result.secrets]
    if secrets:
        click.echo("")
        click.echo("Set these variables (the Dify API keys the manifests reference):")
        width = max(len(secret.name) for _, secret in secrets)
        for app, secret in secrets:
            where = f"{app}/{secret.user_id} {secret.integration}"
            masked = "" if secret.value is not None else " (masked by the API)"
            click.echo(terminal_safe(f"  {secret.name.ljust(width)}  {where}{masked}"))
        plain = sum(1 for _, secret in secrets if secret.value is not None)
        click.echo(_secrets_note(plain, len(secrets) - plain, secrets_to, saved))
    elif secrets_to is not None:
        click.echo(f"No Dify API key found: {display_path(secrets_to)} was not kept.")
    done = [result for result in exports if result.error is None]
    if done:
        paths = " ".join(display_path(result.folder) for result in done)
        click.echo(f"Next: provisioner validate {paths} && provisioner plan (adoptions only)")


def _secrets_note(
    plain: int, masked: int, secrets_to: Path | None, saved: tuple[int, int] | None
) -> str:
    notes: list[str] = []
    if plain and secrets_to is not None and saved is not None:
        notes.append(
            f"{saved[0]} key(s) the API returned in plain text were saved to"
            f" {display_path(secrets_to)} (mode 600); load them into the environment, keep"
            " the file out of git"
        )
    elif plain:
        notes.append(
            f"the API returned {plain} key(s) in plain text; they were not written: run again"
            " with --secrets-to FILE to save them, or copy them from Dify"
        )
    if masked:
        notes.append(
            f"{masked} key(s) are masked by the API: their values must come from Dify (each"
            " Dify app's API access page)"
        )
    return "; ".join(notes) + "."
