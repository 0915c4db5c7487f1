"""Options shared by several commands, declared once so their flags and help agree."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provisioner.apply import DEFAULT_CONCURRENCY
from provisioner.cli.lazy import BOTS_DIR
from provisioner.cli.output import mask
from provisioner.errors import ConfigError
from provisioner.render.texts import DEFAULT_LANG, LANG_VARIABLE, Lang, parse_lang
from provisioner.secrets.bundle import parse_bundle
from provisioner.workspace import parse_shard

bots_dir_option = click.option(
    "--bots-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=BOTS_DIR,
    show_default=True,
    help="Folder of app folders. Default: bots/ of the current folder, else of the nearest"
    " folder above it that has one (up to the git repository's root).",
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


def _load_env_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Put the file's variables into the environment for this command (a variable the
    environment already sets, not empty, wins) and mask every value at once: each is a
    secret. Removed again when the command ends (the process may run more than one)."""
    if value is None:
        return
    try:
        text = value.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"cannot read the --env-file {value}: {reason}",
            hint="give a NAME=value file such as the one `export --secrets-to` writes",
        ) from exc
    values = parse_bundle(text, source=f"--env-file {value}")
    mask(values.values())
    added = {name: val for name, val in values.items() if not os.environ.get(name)}
    os.environ.update(added)

    def restore() -> None:
        for name in added:
            os.environ.pop(name, None)

    ctx.call_on_close(restore)


env_file_option = click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_load_env_file,
    metavar="FILE",
    help="Read ${NAME} variables from FILE (NAME=value lines, as `export --secrets-to` writes"
    " them); the environment wins. Every value is a secret: never printed.",
)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(click.ParamType[float]):
    """``30s``, ``5m``, ``1h``, ``500ms`` or plain seconds (``90``), as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration such as 30s, 5m or 1h", param, ctx)
        return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]


lock_timeout_option = click.option(
    "--lock-timeout",
    type=Duration(),
    metavar="DURATION",
    help="Wait up to DURATION (30s, 5m, 1h) for an app's state lock another run holds,"
    " naming the holder, then fail. Default: fail at once.",
)
