"""`provisioner sign`: print RongCloud's signing headers for one request made with curl.

``sign APP`` takes the app key and secret from the references in ``bots/APP/app.yaml``;
``sign APP --format curl PATH [JSON]`` prints the whole curl command for its endpoint.
Without APP (as before), the secret comes only from ``RONGCLOUD_APP_SECRET`` (never a flag,
so it stays out of shell history and process lists) and the app key from ``--app-key`` or
``RONGCLOUD_APP_KEY``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from provisioner.cli.options import bots_dir_option, env_file_option
from provisioner.connect import Credentials, credentials
from provisioner.errors import ConfigError
from provisioner.models import DesiredApp
from provisioner.rongcloud.direct import check_path, curl_command, parse_body
from provisioner.rongcloud.signing import check_credential, sign
from provisioner.workspace import load_settings, resolve_app_folders

SECRET_ENV = "RONGCLOUD_APP_SECRET"
KEY_ENV = "RONGCLOUD_APP_KEY"


@click.command("sign")
@click.argument("app", required=False)
@click.argument("path", required=False)
@click.argument("body", required=False, metavar="[JSON]")
@click.option(
    "--app-key",
    metavar="KEY",
    help=f"App key (default: ${KEY_ENV}).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["headers", "curl"]),
    default="headers",
    show_default=True,
    help="headers: 'Name: value' lines; curl: -H flags to paste after a curl command, or"
    " with APP and PATH the whole curl command.",
)
@click.option("--form", is_flag=True, help="With PATH: a form-encoded body (legacy APIs).")
@bots_dir_option
@env_file_option
def command(
    app: str | None,
    path: str | None,
    body: str | None,
    app_key: str | None,
    output_format: str,
    form: bool,
    bots_dir: Path,
) -> int:
    """Print fresh App-Key, Nonce, Timestamp and Signature headers.

    With APP, the app key and secret are those app.yaml of APP references (the variables
    must be set). Without APP, the secret is read from $RONGCLOUD_APP_SECRET and the key
    from --app-key or $RONGCLOUD_APP_KEY. Each run makes a new nonce and timestamp, so sign
    again for every request. --format curl prints -H flags to paste after
    `curl -X POST https://api.rong-api.com/v3/bot/query.json \\`; with APP and PATH
    (and JSON, default {}) it prints the complete curl command for APP's endpoint.
    The secret itself is never printed. For a call made for you, see `provisioner api`.

    \b
    Examples:
      provisioner sign production
      provisioner sign production --format curl /v3/bot/query.json '{"page": 1}'
    """
    if app is not None:
        return _sign_for_app(app, path, body, app_key, output_format, form, bots_dir)
    key = app_key or os.environ.get(KEY_ENV)
    if not key:
        raise ConfigError(
            "no app key given",
            hint=f"pass --app-key KEY or export {KEY_ENV}=... (the App Key from the console)",
        )
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise ConfigError(
            f"environment variable {SECRET_ENV} is not set",
            hint=f"export {SECRET_ENV}=... (the App Secret from the RongCloud console); "
            "it is read only from the environment",
        )
    check_credential("app key", key, hint=f"pass --app-key KEY or set {KEY_ENV}")
    check_credential("app secret", secret, hint=f"set {SECRET_ENV}")
    _echo_headers(sign(key, secret).as_dict(), output_format)
    return 0


def _echo_headers(headers: dict[str, str], output_format: str) -> None:
    """``Name: value`` lines, or for curl ``-H`` flags joined by line continuations."""
    if output_format == "curl":
        flags = [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
        click.echo(" \\\n".join(flags))
    else:
        for name, value in headers.items():
            click.echo(f"{name}: {value}")


def _sign_for_app(
    app: str,
    path: str | None,
    body: str | None,
    app_key: str | None,
    output_format: str,
    form: bool,
    bots_dir: Path,
) -> int:
    if app.startswith("/"):
        raise ConfigError(
            f"{app!r} looks like an API path, not an app",
            hint="give the app first: provisioner sign APP --format curl PATH [JSON]",
        )
    if app_key is not None:
        raise click.UsageError("give APP or --app-key, not both (APP's app.yaml names its key)")
    if path is not None and output_format != "curl":
        raise click.UsageError("PATH is for --format curl, which prints the whole command")
    if path is None and (body is not None or form):
        raise click.UsageError("JSON and --form need PATH")
    env = dict(os.environ)
    (folder,) = resolve_app_folders([app], bots_dir)
    found = _credentials(load_settings(folder, env), env)
    check_credential("app key", found.app_key, hint="set appKey in app.yaml (or its variable)")
    check_credential("app secret", found.app_secret, hint="set the variable appSecret references")
    headers = sign(found.app_key, found.app_secret).as_dict()
    if path is not None:
        data = parse_body(body or "", "the JSON argument")
        url = found.hosts[0] + check_path(path)
        click.echo(curl_command(url, headers, data, form=form))
    else:
        _echo_headers(headers, output_format)
    return 0


def _credentials(app: DesiredApp, env: Mapping[str, str]) -> Credentials:
    """The app's key, secret and hosts; ConfigError when a variable is unset or the app is
    local (the embedded emulator has no fixed address)."""

    def missing(names: Sequence[str]) -> ConfigError:
        exports = " ".join(f"{name}=..." for name in names if " " not in name)
        return ConfigError(
            f"app {app.name}: cannot sign without {', '.join(names)}",
            hint=f"export {exports}" if exports else "set appKey and appSecret in app.yaml",
        )

    found = credentials(app, env, missing)
    if found.is_local:
        raise ConfigError(
            f"app {app.name} uses endpoint: local, the embedded emulator, which has no fixed"
            " address or secret to sign for",
            hint=f"call it with `provisioner api {app.name} PATH`, or run `provisioner emulator"
            " serve` and sign for its app key",
        )
    return found
