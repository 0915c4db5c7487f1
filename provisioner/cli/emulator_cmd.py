"""`provisioner emulator serve`: run the local RongCloud bot API emulator until Ctrl-C."""

from __future__ import annotations

import ipaddress
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.errors import ConfigError

if TYPE_CHECKING:
    from provisioner.emulator import EmulatorServer


@click.group("emulator")
def command() -> None:
    """A local stand-in for RongCloud's bot API (signatures, limits, faults)."""


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
@click.option("--app-key", help="App key to accept (default: reuse the one in --db, or new).")
@click.option(
    "--app-secret",
    envvar="PROVISIONER_EMULATOR_APP_SECRET",
    help="Secret of --app-key (or PROVISIONER_EMULATOR_APP_SECRET).",
)
@click.option("--mask-api-keys", is_flag=True, help="Return auth.apiKey as ****** on get/query.")
@click.option(
    "--strict-signatures",
    is_flag=True,
    help="Refuse nonces over 18 characters and replayed nonces (the documented letter).",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0, help="Delay per request.")
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=0, help="Fraction answered HTTP 500."
)
@click.option("--burst-429", type=click.IntRange(min=0), default=0, help="Next N calls get 429.")
@click.option(
    "--drop-after-commit",
    type=click.FloatRange(0, 1),
    default=0,
    help="Fraction of writes committed, then dropped without an answer.",
)
@click.option(
    "--random-undocumented-codes",
    is_flag=True,
    help="Answer outcomes RongCloud gives no code for (duplicate userId, unknown bot, ...) "
    "with HTTP 400 and a random code instead of the invented 1010, 1404, 1502.",
)
@click.option("--seed", type=int, help="Seed for the random faults (deterministic runs).")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Calls per second per app key and endpoint.",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not a loopback address.")
def serve(
    host: str,
    port: int,
    db_path: Path | None,
    app_key: str | None,
    app_secret: str | None,
    mask_api_keys: bool,
    strict_signatures: bool,
    latency_ms: float,
    error_rate: float,
    burst_429: int,
    drop_after_commit: float,
    random_undocumented_codes: bool,
    seed: int | None,
    rate_limit: int,
    allow_remote: bool,
) -> int:
    """Serve the emulator, print its URL and credentials, and run until Ctrl-C.

    Admin endpoints (loopback clients only): GET/POST /_emulator/faults, GET /_emulator/stats,
    POST /_emulator/reset-stats. Exit status 0 when stopped with Ctrl-C or SIGTERM.
    """
    from provisioner.emulator import EmulatorServer, FaultConfig

    _check_host(host, allow_remote)
    apps = _apps(app_key, app_secret)
    faults = FaultConfig(
        latency_ms=latency_ms,
        error_rate=error_rate,
        burst_429=burst_429,
        drop_after_commit=drop_after_commit,
        random_undocumented_codes=random_undocumented_codes,
        seed=seed,
    )
    server = EmulatorServer(
        apps=apps,
        db_path=db_path,
        host=host,
        port=port,
        faults=faults,
        mask_api_keys=mask_api_keys,
        strict_signatures=strict_signatures,
        rate_limit=rate_limit,
    )
    with server:
        _announce(server, secret_given=app_secret is not None)
        _wait_for_shutdown(server)
    click.echo("emulator stopped")
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


def _apps(app_key: str | None, app_secret: str | None) -> dict[str, str] | None:
    if app_key is None and app_secret is None:
        return None
    if app_key is None or app_secret is None:
        raise ConfigError(
            "--app-key and --app-secret go together",
            hint="give both, or neither to reuse the app of --db (or get a new one)",
        )
    return {app_key: app_secret}


def _announce(server: EmulatorServer, *, secret_given: bool) -> None:
    click.echo(f"RongCloud bot API emulator listening on {server.url}")
    for key, secret in server.apps.items():
        shown = "(as given)" if secret_given else secret
        click.echo(f"  app key:    {key}")
        click.echo(f"  app secret: {shown}")
    database = str(server.db_path) if server.db_path else "temporary (removed at exit)"
    click.echo(f"  database:   {database}")
    click.echo(f"  admin:      {server.url}/_emulator/stats, {server.url}/_emulator/faults")
    click.echo("Press Ctrl-C to stop.")


def _wait_for_shutdown(server: EmulatorServer) -> None:
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
