"""`provisioner api`: one signed call to any RongCloud server API path, with the app's own
credentials (see docs/api-client.md, "Direct calls")."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from provisioner.cli.options import bots_dir_option, env_file_option
from provisioner.cli.output import mask
from provisioner.connect import connect
from provisioner.rongcloud.direct import READ_PATHS, check_path, form_fields, parse_body
from provisioner.secrets import MASK, referenced_values
from provisioner.workspace import load_settings, resolve_app_folders


@click.command("api")
@click.argument("app")
@click.argument("path")
@click.argument("body", required=False, metavar="[JSON]")
@click.option(
    "--form",
    is_flag=True,
    help="Send the body form-encoded (legacy APIs such as /message/private/publish.json);"
    " a list value repeats the parameter.",
)
@bots_dir_option
@env_file_option
def command(app: str, path: str, body: str | None, form: bool, bots_dir: Path) -> int:
    """POST one signed request to PATH with APP's credentials; print the answer's JSON.

    The host comes from APP's endpoint (with data-center failover); JSON is the body, an
    object, as an argument, or on standard input when it is left out or `-`. The app
    secret is never printed. Only the documented reads (/v3/bot/get.json,
    /v3/bot/query.json) are retried after a timeout, dropped connection or 5xx; any other
    call is sent once, since it may already have taken effect. Dify keys (apiKey) in the
    answer are shown as (sensitive).

    Exit status: 0 success, 1 error answer (code, message and request id on stderr) or any
    other error.

    \b
    Examples:
      provisioner api production /v3/bot/query.json '{"page": 1, "pageSize": 20}'
      provisioner api production /v3/bot/get.json '{"userIds": ["assistant-bot"]}'
      echo '{"fromUserId": "u1", "toUserId": "assistant-bot", "objectName": "RC:TxtMsg",
            "content": {"content": "你好"}}' |
        provisioner api production /message/private/publish.json --form
    """
    check_path(path)
    data = _read_body(body)
    env = dict(os.environ)
    (folder,) = resolve_app_folders([app], bots_dir)
    settings = load_settings(folder, env)
    mask(referenced_values(settings.reference_texts(), env))
    payload = form_fields(data) if form else data
    with connect(settings, env) as client:
        answer = client.call(path, dict(payload), form=form, read=path in READ_PATHS)
    text = json.dumps(_masked_keys(answer), ensure_ascii=False, indent=2)
    click.echo(text)
    return 0


def _masked_keys(value: object) -> object:
    """The answer with every ``apiKey`` value (a bot's Dify key) shown as ``(sensitive)``."""
    if isinstance(value, dict):
        return {
            key: MASK if key == "apiKey" and isinstance(item, str) else _masked_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked_keys(item) for item in value]
    return value


def _read_body(argument: str | None) -> dict[str, object]:
    if argument is not None and argument != "-":
        return parse_body(argument, "the JSON argument")
    if argument is None and sys.stdin.isatty():
        return {}
    return parse_body(sys.stdin.read(), "the JSON on standard input")
