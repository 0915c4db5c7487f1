"""The API client of an app: its endpoint, credentials from the environment, rate limit and
retry backoff. ``endpoint: local`` starts the embedded emulator for the block instead — and,
for its Dify integrations, the app's Dify stand-in (:func:`dify_route`)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import ConfigError
from provisioner.secrets import (
    is_available,
    is_sensitive,
    referenced_values,
    references,
    resolve,
    unavailable_error,
)

if TYPE_CHECKING:
    from provisioner.dify.routing import DifyRoute
    from provisioner.models import DesiredApp
    from provisioner.rongcloud.client import RongCloudClient

DEFAULT_RATE_LIMIT = 50.0
"""Calls per second when an app's settings give no ``rateLimit``."""

LOCAL_ENDPOINT = "local"
RETRY_BACKOFF_ENV = "PROVISIONER_RETRY_BACKOFF"
"""Seconds: the base of the API client's retry backoff (RongCloudClient's ``backoff_base``)."""
DEFAULT_RETRY_BACKOFF = 0.5
MAX_RETRY_BACKOFF = 60.0


def missing_credentials(app: DesiredApp, env: Mapping[str, str]) -> list[str]:
    """What keeps a refresh from calling the API: unset variables referenced by ``endpoint``,
    ``appKey``/``appSecret`` or an absent setting (empty list: ready; ``local`` always is)."""
    settings = app.settings
    unset_endpoint = [name for name in references(settings.endpoint) if not is_available(name, env)]
    if unset_endpoint:
        return unset_endpoint
    if app_endpoint(app, env) == LOCAL_ENDPOINT:
        return []
    missing: list[str] = []
    for field, value in (("appKey", settings.appKey), ("appSecret", settings.appSecret)):
        if value is None:
            missing.append(f"{field} (not set in app.yaml)")
            continue
        missing.extend(name for name in references(value) if not is_available(name, env))
    return missing


@contextmanager
def connect(app: DesiredApp, env: Mapping[str, str]) -> Iterator[RongCloudClient]:
    """A client for the app's API. ``endpoint: local`` starts the embedded emulator for the
    block (state under ``.provisioner/`` of the working directory). The client redacts every
    ``${NAME}`` value of the app from the messages RongCloud sends back."""
    from provisioner.rongcloud import RongCloudClient, hosts_for_endpoint

    settings = app.settings
    rate_limit = settings.rateLimit or DEFAULT_RATE_LIMIT
    backoff = retry_backoff(env)
    redact = referenced_values(app.reference_texts(), env)

    def client_for(app_key: str, app_secret: str, hosts: Sequence[str]) -> RongCloudClient:
        return RongCloudClient(
            app_key=app_key,
            app_secret=app_secret,
            hosts=hosts,
            rate_limit=rate_limit,
            backoff_base=backoff,
            redact=redact,
        )

    unset = [name for name in references(settings.endpoint) if not is_available(name, env)]
    if unset:
        error = unavailable_error(unset[0], env)
        raise ConfigError(
            f"{_where(app, 'endpoint')}: endpoint: {error.message}",
            hint=f"export {unset[0]}=... (local, a data center or a base URL), or pass"
            " --no-refresh to plan from the recorded state only",
        )
    missing = missing_credentials(app, env)
    endpoint = app_endpoint(app, env)
    if endpoint == LOCAL_ENDPOINT:
        from provisioner.emulator import EmulatorServer

        with EmulatorServer.local(app.name, Path.cwd()) as server:
            app_key, app_secret = next(iter(server.apps.items()))
            with client_for(app_key, app_secret, [server.url]) as client:
                yield client
        return
    if missing or settings.appKey is None or settings.appSecret is None:
        raise _credentials_error(app, missing)
    key, secret = resolve(settings.appKey, env), resolve(settings.appSecret, env)
    with client_for(key, secret, hosts_for_endpoint(endpoint)) as client:
        yield client


def app_endpoint(app: DesiredApp, env: Mapping[str, str]) -> str:
    """The app's ``endpoint`` with its ``${NAME}`` resolved from ``env``. A value from the
    environment must itself be a valid endpoint (``local``, a data center or a base URL): a
    ConfigError names app.yaml's line and column, the field and the variable, never the value.
    """
    endpoint = app.settings.endpoint
    if not is_sensitive(endpoint):
        return endpoint
    from provisioner.models import is_endpoint

    value = resolve(endpoint, env)
    if not is_endpoint(value):
        names = ", ".join(dict.fromkeys(references(endpoint)))
        raise ConfigError(
            f"{_where(app, 'endpoint')}: endpoint: the value of {names} is not an endpoint",
            hint="set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https://"
            " base URL (`provisioner validate --require-env` checks it)",
        )
    return value


def _where(app: DesiredApp, field: str) -> str:
    """``bots/demo/app.yaml:3:11`` for a field of the app's settings (just the file when it
    cannot be read again)."""
    from provisioner.manifest import load_document
    from provisioner.validate import APP_FILE, display_path

    path = app.folder / APP_FILE
    shown = display_path(path)
    document = load_document(path, shown)
    if not document.loaded:
        return shown
    line, column = document.location((field,))
    return f"{shown}:{line}:{column}"


def retry_backoff(env: Mapping[str, str]) -> float:
    """The client's backoff base in seconds: ``PROVISIONER_RETRY_BACKOFF`` (a number from 0
    to 60) when set, else 0.5. A ``Retry-After`` from the server is honoured regardless."""
    raw = env.get(RETRY_BACKOFF_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_RETRY_BACKOFF
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_RETRY_BACKOFF:
        raise ConfigError(
            f"environment variable {RETRY_BACKOFF_ENV} must be a number of seconds from 0 to"
            f" {MAX_RETRY_BACKOFF:g}, got {raw!r}",
            hint=f"unset it to use the default {DEFAULT_RETRY_BACKOFF:g} s, or give e.g. 0.05",
        )
    return value


def _credentials_error(app: DesiredApp, missing: Sequence[str]) -> ConfigError:
    """The message leaves the app name to the caller (the CLI prefixes ``app NAME:``)."""
    names = ", ".join(missing)
    exports = " ".join(f"{name}=..." for name in missing if " " not in name)
    how = f"export {exports}" if exports else "set appKey/appSecret in app.yaml"
    return ConfigError(
        f"no credentials to refresh from the API: {names}",
        hint=f"{how}, or pass --no-refresh to plan from the recorded state only",
    )


@contextmanager
def dify_route(
    app: DesiredApp, env: Mapping[str, str], base_dir: Path
) -> Iterator[DifyRoute | None]:
    """How ``app``'s Dify integrations are reached while the block runs: for ``endpoint:
    local``, the local rule, with the app's Dify stand-in (``emulator.dify``) serving on
    loopback, conversations kept in the local emulator's database under ``base_dir``;
    ``None`` (call each ``callbackUrl``) for any other endpoint."""
    from provisioner.dify.routing import DifyRoute

    if app.settings.endpoint != LOCAL_ENDPOINT:
        yield None
        return
    settings = app.settings.emulator
    if settings is None or not settings.dify:
        yield DifyRoute(None)
        return
    from provisioner.emulator.dify.apps import apps_from_settings
    from provisioner.emulator.dify.server import DifyStandIn
    from provisioner.emulator.server import local_database

    apps = apps_from_settings(settings.dify, env)
    with DifyStandIn(apps, db_path=local_database(app.name, base_dir)) as stand_in:
        yield DifyRoute(stand_in.api_base)
