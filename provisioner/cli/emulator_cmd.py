"""`provisioner emulator serve`: run the local RongCloud emulator (bot API, message runtime,
optionally a Dify stand-in) until Ctrl-C; `provisioner emulator dify`: the stand-in alone."""

from __future__ import annotations

import ipaddress
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.connect import stand_in_apps_file
from provisioner.errors import ConfigError
from provisioner.extras import requires_extra

if TYPE_CHECKING:
    from provisioner.emulator import EmulatorServer
    from provisioner.emulator.dify.server import DifyStandIn


@click.group("emulator")
def command() -> None:
    """A local stand-in for RongCloud's bot API and messages, and for Dify."""


_FAULT_OPTIONS = (
    click.option(
        "--latency-ms", type=click.FloatRange(min=0), default=0, help="Delay per request."
    ),
    click.option(
        "--error-rate", type=click.FloatRange(0, 1), default=0, help="Fraction answered HTTP 500."
    ),
    click.option(
        "--burst-429", type=click.IntRange(min=0), default=0, help="Next N calls get 429."
    ),
    click.option(
        "--drop-after-commit",
        type=click.FloatRange(0, 1),
        default=0,
        help="Fraction of writes committed, then dropped without an answer.",
    ),
    click.option(
        "--random-undocumented-codes",
        is_flag=True,
        help="Answer outcomes RongCloud gives no code for (duplicate userId, unknown bot,"
        " ...) with HTTP 400 and a random code instead of the invented 1010, 1404, 1502.",
    ),
    click.option("--seed", type=int, help="Seed for the random faults (deterministic runs)."),
)
"""The fault switches of `emulator serve`, named as the fields of the emulator's
``FaultConfig``: the command hands them over as they are."""


def _fault_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_FAULT_OPTIONS):
        function = option(function)
    return function


@command.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 = a free port."
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file that keeps bots and apps between runs (default: temporary).",
)
@click.option(
    "--app-key",
    "app_keys",
    multiple=True,
    help="App key to accept; repeat for several apps (default: reuse those in --db, or new).",
)
@click.option(
    "--app-secret",
    "app_secrets",
    multiple=True,
    envvar="PROVISIONER_EMULATOR_APP_SECRET",
    help="Secret of each --app-key, in order (or PROVISIONER_EMULATOR_APP_SECRET, "
    "space-separated).",
)
@click.option("--mask-api-keys", is_flag=True, help="Return auth.apiKey as ****** on get/query.")
@click.option(
    "--strict-signatures",
    is_flag=True,
    help="Refuse nonces over 18 characters and replayed nonces (the documented letter).",
)
@_fault_options
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Calls per second per app key and endpoint.",
)
@click.option(
    "--dify-apps",
    "dify_apps_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML list of Dify stand-in apps to serve too (the emulator.dify format); a "
    "message's Dify calls off this machine go to them.",
)
@click.option(
    "--callback-timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=30.0,
    show_default=True,
    help="Seconds each webhook or Dify call of a published message may take.",
)
@click.option(
    "--profile",
    "profile_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A probe report (`provisioner probe --out FILE`): answer as the probed app did"
    " wherever RongCloud's docs are silent.",
)
@click.option(
    "--update-semantics",
    type=click.Choice(["replace", "patch"]),
    help="How an update treats fields it leaves out: removed (replace, the default) or kept"
    " (patch).",
)
@click.option(
    "--generic-1002",
    is_flag=True,
    help="A duplicate userId and a missing bot answer 400/1002 (RongCloud's generic"
    " parameter error) instead of the invented 1010 and 1404.",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
def serve(
    host: str,
    port: int,
    db_path: Path | None,
    app_keys: tuple[str, ...],
    app_secrets: tuple[str, ...],
    mask_api_keys: bool,
    strict_signatures: bool,
    rate_limit: int,
    dify_apps_file: Path | None,
    callback_timeout: float,
    profile_file: Path | None,
    update_semantics: str | None,
    generic_1002: bool,
    allow_remote: bool,
    **faults: Any,  # _FAULT_OPTIONS, by the names of FaultConfig's fields
) -> int:
    """Serve the emulator, print its URL and credentials, and run until Ctrl-C.

    One process serves every app given (--app-key/--app-secret pairs, or the apps stored in
    --db), each with its own bots. Messages published to a bot (POST
    /message/private/publish.json) fire its webhooks (on this machine only) and Dify
    integrations (the --dify-apps stand-in, or a Dify on this machine).

    Admin endpoints (loopback clients only): GET/POST /_emulator/faults, GET /_emulator/stats,
    POST /_emulator/reset-stats, GET /_emulator/conversation. Exit status 0 when stopped with
    Ctrl-C or SIGTERM.
    """
    with requires_extra("emulator"):
        from provisioner.emulator import EmulatorServer, FaultConfig
        from provisioner.emulator.bots.profile import GENERIC_1002, Profile

    _check_host(host, allow_remote)
    profile = Profile.from_file(profile_file) if profile_file else Profile()
    if update_semantics:
        profile = profile.changed(
            f"--update-semantics {update_semantics}", update_omitted_fields=update_semantics
        )
    if generic_1002:
        profile = profile.changed("--generic-1002", **GENERIC_1002)
    apps = _apps(app_keys, app_secrets)
    dify_apps = stand_in_apps_file(dify_apps_file, os.environ) if dify_apps_file else None
    server = EmulatorServer(
        apps=apps,
        db_path=db_path,
        host=host,
        port=port,
        faults=FaultConfig(**faults),
        mask_api_keys=mask_api_keys,
        strict_signatures=strict_signatures,
        rate_limit=rate_limit,
        dify_apps=dify_apps,
        callback_timeout=callback_timeout,
        profile=profile,
    )
    with server:
        _announce(server, secret_given=bool(app_secrets))
        _wait_for_shutdown(server)
    click.echo("emulator stopped")
    return 0


@command.command("dify")
@click.option(
    "--apps",
    "apps_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML list of the stand-in's apps (the emulator.dify format of app.yaml).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 = a free port."
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file that keeps the conversations between runs (default: in memory).",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
def dify(apps_file: Path, host: str, port: int, db_path: Path | None, allow_remote: bool) -> int:
    """Serve only the Dify stand-in (Dify's Service API for the listed apps) until Ctrl-C.

    Point a bot's callbackUrl at the printed API base (it ends in /v1). Exit status 0 when
    stopped with Ctrl-C or SIGTERM.
    """
    with requires_extra("emulator"):
        from provisioner.emulator.dify.server import DifyStandIn

    _check_host(host, allow_remote)
    stand_in = DifyStandIn(
        stand_in_apps_file(apps_file, os.environ), db_path=db_path, host=host, port=port
    )
    with stand_in:
        click.echo(f"Dify stand-in listening on {stand_in.api_base}")
        for app in stand_in.apps:
            inputs = ", ".join(item.variable for item in app.inputs) or "none"
            click.echo(f"  {app.name}: mode {app.mode}, inputs {inputs}")
        click.echo("Press Ctrl-C to stop.")
        _wait_for_shutdown(stand_in)
    click.echo("Dify stand-in stopped")
    return 0


def _check_host(host: str, allow_remote: bool) -> None:
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"--host {host} is not a loopback address; the emulator serves this machine only",
            hint="use --host 127.0.0.1, or add --allow-remote if you really mean to expose it",
        )


def _apps(app_keys: tuple[str, ...], app_secrets: tuple[str, ...]) -> dict[str, str] | None:
    if not app_keys and not app_secrets:
        return None
    if len(app_keys) != len(app_secrets):
        raise ConfigError(
            "--app-key and --app-secret go together",
            hint="give one --app-secret per --app-key, in the same order (or neither, to reuse"
            " the apps of --db or get a new one)",
        )
    if len(set(app_keys)) != len(app_keys):
        raise ConfigError("an --app-key is given twice", hint="give each app key once")
    return dict(zip(app_keys, app_secrets, strict=True))


def _announce(server: EmulatorServer, *, secret_given: bool) -> None:
    click.echo(f"RongCloud bot API emulator listening on {server.url}")
    for key, secret in server.apps.items():
        shown = "(as given)" if secret_given else secret
        click.echo(f"  app key:    {key}")
        click.echo(f"  app secret: {shown}")
    database = str(server.db_path) if server.db_path else "temporary (removed at exit)"
    click.echo(f"  database:   {database}")
    if server.profile.source != "defaults":
        click.echo(f"  profile:    {server.profile.source}")
    click.echo(f"  admin:      {server.url}/_emulator/stats, {server.url}/_emulator/faults")
    if server.dify is not None:
        names = ", ".join(f"{app.name} ({app.mode})" for app in server.dify.apps)
        click.echo(f"  Dify:       {server.dify.api_base} (stand-in: {names})")
    click.echo("Press Ctrl-C to stop.")


def _wait_for_shutdown(server: EmulatorServer | DifyStandIn) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM; a seam for in-process tests."""
    stop = threading.Event()
    previous: Any = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
