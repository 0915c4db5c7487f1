"""Options shared by several commands, declared once so their flags and help agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provisioner.apply import DEFAULT_CONCURRENCY
from provisioner.errors import ConfigError
from provisioner.render.texts import DEFAULT_LANG, LANG_VARIABLE, Lang, parse_lang
from provisioner.workspace import parse_shard

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


def concurrency_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--concurrency N`` (1-256, default 8), with the command's own help text."""
    return click.option(
        "--concurrency",
        type=click.IntRange(1, 256),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help=help_text,
    )


schemas_dir_option = click.option(
    "--schemas-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("schemas"),
    show_default=True,
    help="Where the JSON Schemas are (written there when missing); modelines point at them.",
)


def credential_var_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--app-key-var NAME`` and ``--app-secret-var NAME`` for a new app.yaml."""
    function = click.option(
        "--app-secret-var",
        metavar="NAME",
        help="Variable for appSecret in a new app.yaml (default RONGCLOUD_<APP>_APP_SECRET).",
    )(function)
    return click.option(
        "--app-key-var",
        metavar="NAME",
        help="Variable for appKey in a new app.yaml (default RONGCLOUD_<APP>_APP_KEY).",
    )(function)


def _parse_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.message} ({exc.hint})") from None


shard_option = click.option(
    "--shard",
    metavar="I/N",
    callback=_parse_shard,
    help="Only the apps of job I of N (a stable hash of the app name): for a CI matrix.",
)


def _parse_lang(ctx: click.Context, param: click.Parameter, value: str | None) -> Lang:
    if not value:
        return DEFAULT_LANG
    try:
        return parse_lang(value, where="")
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.message} ({exc.hint})") from None


lang_option = click.option(
    "--lang",
    envvar=LANG_VARIABLE,
    metavar="en|zh-CN",
    callback=_parse_lang,
    help="Language of what reviewers read: comments, issues, job summary (default en; env "
    f"{LANG_VARIABLE}). The log stays English.",
)
