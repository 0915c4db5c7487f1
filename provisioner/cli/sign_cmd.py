"""`provisioner sign`: print RongCloud's signing headers for one request made with curl.

The secret comes only from ``RONGCLOUD_APP_SECRET`` (never a flag, so it stays out of shell
history and process lists); the app key from ``--app-key`` or ``RONGCLOUD_APP_KEY``.
"""

from __future__ import annotations

import os
import shlex

import click

from provisioner.errors import ConfigError

SECRET_ENV = "RONGCLOUD_APP_SECRET"
KEY_ENV = "RONGCLOUD_APP_KEY"


@click.command("sign")
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
    help="headers: 'Name: value' lines; curl: -H flags to paste after a curl command.",
)
def command(app_key: str | None, output_format: str) -> int:
    """Print fresh App-Key, Nonce, Timestamp and Signature headers.

    Reads the app secret from $RONGCLOUD_APP_SECRET. Each run makes a new nonce and
    timestamp, so sign again for every request. With --format curl, paste the output
    after `curl -X POST https://api.rong-api.com/v3/bot/query.json \\`.
    """
    from provisioner.rongcloud.signing import check_credential, sign

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
    headers = sign(key, secret).as_dict()
    if output_format == "curl":
        flags = [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
        click.echo(" \\\n".join(flags))
    else:
        for name, value in headers.items():
            click.echo(f"{name}: {value}")
    return 0
