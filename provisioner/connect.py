"""An app's credentials and API client, and the one rule that says whether an app is local.

- :func:`app_endpoint` resolves ``endpoint`` (a ``${NAME}`` included); the app is local when
  that is ``local`` (:func:`is_local`), however it was written;
- :func:`credentials` resolves what reaching the app's API needs, once: key, secret, hosts;
- :func:`connect` makes the app's client (rate limit, retry backoff, redaction);
- a local app is served by the embedded emulator (:func:`local_emulator`) and its Dify
  integrations by the app's Dify stand-in (:func:`dify_route`): the ``[emulator]`` extra,
  imported only when an app is local (:func:`_emulator`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import yaml
from pydantic import TypeAdapter, ValidationError

from provisioner.diagnostics import display_path, format_path
from provisioner.dify.protocol import MODE_NAMES
from provisioner.dify.routing import DifyRoute
from provisioner.errors import ConfigError
from provisioner.extras import requires_extra
from provisioner.models import APP_FILE, LOCAL_ENDPOINT, DesiredApp, StandInApp, is_endpoint
from provisioner.rongcloud import RongCloudClient, hosts_for_endpoint
from provisioner.secrets import (
    is_available,
    is_sensitive,
    referenced_values,
    references,
    resolve,
    unavailable_error,
)
from provisioner.secrets.bundle import BUNDLE_VARIABLE

if TYPE_CHECKING:
    from provisioner.emulator.bots.profile import Profile
    from provisioner.emulator.dify.apps import DifyApp, DifyInput
    from provisioner.emulator.dify.server import DifyStandIn
    from provisioner.emulator.server import EmulatorServer

DEFAULT_RATE_LIMIT = 50.0
"""Calls per second when an app's settings give no ``rateLimit``."""
RETRY_BACKOFF_ENV = "PROVISIONER_RETRY_BACKOFF"
"""Seconds: the base of the API client's retry backoff (RongCloudClient's ``backoff_base``)."""
DEFAULT_RETRY_BACKOFF = 0.5
MAX_RETRY_BACKOFF = 60.0
NO_REFRESH = "pass --no-refresh to plan from the recorded state only"
"""What a refresh without credentials can do instead (the end of its hints)."""


@dataclass(frozen=True)
class Credentials:
    """How to reach an app's API, every reference resolved: the key and secret app.yaml names
    and the hosts of its endpoint (primary first). ``is_local``: the embedded emulator, which
    makes its own key, secret and address once it runs (:func:`local_emulator`); until then
    all three are empty. ``repr`` leaves the secret out."""

    app_key: str
    app_secret: str = field(repr=False)
    hosts: tuple[str, ...]
    is_local: bool = False


LOCAL_CREDENTIALS = Credentials("", "", (), is_local=True)
"""The credentials of a local app before its emulator runs."""

NoCredentials = Callable[[Sequence[str]], ConfigError]
"""The error for unset ``appKey``/``appSecret`` variables or settings absent from app.yaml,
in the words of what the caller could not do without them."""


def credentials(
    app: DesiredApp, env: Mapping[str, str], missing: NoCredentials, *, otherwise: str = ""
) -> Credentials:
    """The app's credentials (:data:`LOCAL_CREDENTIALS` for a local app). ConfigError at
    app.yaml's line and column when ``endpoint`` cannot be resolved (:func:`app_endpoint`,
    ``otherwise`` as there), ``missing(names)`` when the key or secret cannot, naming the
    endpoint's unset variables too when it cannot either (every missing name at once)."""
    unset = [name for name in references(app.settings.endpoint) if not is_available(name, env)]
    if unset and missing_credentials(app, env):  # name them all at once
        raise missing([*unset, *missing_credentials(app, env)])
    endpoint = app_endpoint(app, env, otherwise=otherwise)
    if endpoint == LOCAL_ENDPOINT:
        return LOCAL_CREDENTIALS
    names = missing_credentials(app, env)
    key, secret = app.settings.appKey, app.settings.appSecret
    if names or key is None or secret is None:
        raise missing(names)
    return Credentials(resolve(key, env), resolve(secret, env), tuple(hosts_for_endpoint(endpoint)))


def missing_credentials(app: DesiredApp, env: Mapping[str, str]) -> list[str]:
    """What keeps an app that is not local from calling its API: the unset variables
    ``appKey``/``appSecret`` reference, or a setting absent from app.yaml (empty: ready)."""
    missing: list[str] = []
    for name, value in (("appKey", app.settings.appKey), ("appSecret", app.settings.appSecret)):
        if value is None:
            missing.append(f"{name} (not set in app.yaml)")
            continue
        missing.extend(ref for ref in references(value) if not is_available(ref, env))
    return missing


def is_local(app: DesiredApp, env: Mapping[str, str]) -> bool:
    """True when the embedded emulator serves the app: its endpoint is ``local``, written so or
    as a ``${NAME}`` whose value is (ConfigError as :func:`app_endpoint`)."""
    return app_endpoint(app, env) == LOCAL_ENDPOINT


def app_endpoint(app: DesiredApp, env: Mapping[str, str], *, otherwise: str = "") -> str:
    """The app's ``endpoint`` with its ``${NAME}`` resolved from ``env``. ConfigError naming
    app.yaml's line and column, the field and the variable (never the value) when the variable
    is unset or empty (the hint offers ``otherwise`` too), or when its value is not itself an
    endpoint (``local``, a data center or a base URL)."""
    endpoint = app.settings.endpoint
    if not is_sensitive(endpoint):
        return endpoint
    unset = [name for name in references(endpoint) if not is_available(name, env)]
    if unset:
        error = unavailable_error(unset[0], env)
        instead = f", or {otherwise}" if otherwise else ""
        raise ConfigError(
            f"{_where(app, 'endpoint')}: endpoint: {error.message}",
            hint=f"export {unset[0]}=... (local, a data center or a base URL){instead}",
        )
    value = resolve(endpoint, env)
    if not is_endpoint(value):
        names = ", ".join(dict.fromkeys(references(endpoint)))
        raise ConfigError(
            f"{_where(app, 'endpoint')}: endpoint: the value of {names} is not an endpoint",
            hint="set it to local, a data center (cn, sg, sg-b, na, sa/sau) or an https://"
            " base URL (`provisioner validate --require-env` checks it)",
        )
    return value


def _where(app: DesiredApp, setting: str) -> str:
    """``bots/demo/app.yaml:3:11`` for a setting of the app (just the file when its position
    is not known)."""
    shown = display_path(app.folder / APP_FILE)
    position = app.settings_at.get(setting)
    return shown if position is None else f"{shown}:{position[0]}:{position[1]}"


# --- the API client -----------------------------------------------------------------------


@contextmanager
def connect(app: DesiredApp, env: Mapping[str, str]) -> Iterator[RongCloudClient]:
    """A client for the app's API. A local app's emulator runs for the block (state under
    ``.provisioner/`` of the working directory). The client redacts every ``${NAME}`` value
    of the app from the messages RongCloud sends back."""
    with connect_reached(app, env) as (client, _reached):
        yield client


@contextmanager
def connect_reached(
    app: DesiredApp, env: Mapping[str, str]
) -> Iterator[tuple[RongCloudClient, Credentials]]:
    """:func:`connect`, with the credentials the client uses (a local app's: its emulator's),
    for the calls the client does not make itself (``provisioner probe``'s raw requests)."""
    backoff = retry_backoff(env)
    redact = referenced_values(app.reference_texts(), env)
    found = credentials(app, env, _no_refresh_credentials, otherwise=NO_REFRESH)

    def client_for(reached: Credentials) -> RongCloudClient:
        return RongCloudClient(
            app_key=reached.app_key,
            app_secret=reached.app_secret,
            hosts=reached.hosts,
            rate_limit=app.settings.rateLimit or DEFAULT_RATE_LIMIT,
            backoff_base=backoff,
            redact=redact,
        )

    if not found.is_local:
        with client_for(found) as client:
            yield client, found
        return
    with local_emulator(app, Path.cwd()) as served, client_for(served) as client:
        yield client, served


def _no_refresh_credentials(missing: Sequence[str]) -> ConfigError:
    """The message leaves the app name to the caller (the CLI prefixes ``app NAME:``)."""
    names = ", ".join(missing)
    exports = " ".join(f"{name}=..." for name in missing if " " not in name)
    how = (
        f"export {exports} (in CI: the {BUNDLE_VARIABLE} bundle)"
        if exports
        else "set appKey/appSecret in app.yaml"
    )
    return ConfigError(
        f"no credentials to refresh from the API: {names}", hint=f"{how}, or {NO_REFRESH}"
    )


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


# --- a local app: the embedded emulator and the Dify stand-in ------------------------------


@contextmanager
def local_emulator(
    app: DesiredApp, base_dir: Path, stand_in: Sequence[DifyApp] = ()
) -> Iterator[Credentials]:
    """The embedded emulator of a local app, serving while the block runs (its bots and
    secret kept under ``base_dir/.provisioner/``), and its credentials (``is_local``);
    ``stand_in``: the Dify stand-in apps it serves too (:func:`app_stand_in`)."""
    emulator = _emulator()
    written = app.settings.emulator.profile if app.settings.emulator else None
    profile = emulator.profile.from_file(app.folder / written) if written else None
    with emulator.server.local(
        app.name, base_dir, dify_apps=list(stand_in) or None, profile=profile
    ) as server:
        app_key, app_secret = next(iter(server.apps.items()))
        yield Credentials(app_key, app_secret, (server.url,), is_local=True)


@contextmanager
def dify_route(
    app: DesiredApp, env: Mapping[str, str], base_dir: Path
) -> Iterator[DifyRoute | None]:
    """How ``app``'s Dify integrations are reached while the block runs: for a local app, the
    local rule, with the app's Dify stand-in (``emulator.dify``) serving on loopback,
    conversations kept in the local emulator's database under ``base_dir``; ``None`` (call
    each ``callbackUrl``) for any other endpoint."""
    if not is_local(app, env):
        yield None
        return
    apps = app_stand_in(app, env)
    if not apps:
        yield DifyRoute(None)
        return
    emulator = _emulator()
    with emulator.stand_in(apps, db_path=emulator.database(app.name, base_dir)) as stand_in:
        yield DifyRoute(stand_in.api_base)


def app_stand_in(app: DesiredApp, env: Mapping[str, str]) -> list[DifyApp]:
    """The apps of the app's Dify stand-in (``emulator.dify`` in its app.yaml), as the
    stand-in's values (:func:`stand_in_apps`)."""
    return stand_in_apps(app.settings.emulator.dify if app.settings.emulator else [], env)


def stand_in_apps(apps: Sequence[StandInApp], env: Mapping[str, str]) -> list[DifyApp]:
    """The Dify stand-in's own values for stand-in apps of the manifests, keys resolved from
    ``env`` (ConfigError naming an unset variable; two apps with the same key are an error)."""
    if not apps:
        return []
    emulator = _emulator()
    resolved = [
        emulator.dify_app(
            api_key=resolve(app.apiKey, env),
            mode=app.mode,
            name=app.name or f"Dify {MODE_NAMES[app.mode]} app",
            inputs=tuple(
                emulator.dify_input(
                    item.variable,
                    required=item.required,
                    kind=item.type,
                    max_length=item.maxLength,
                    options=tuple(item.options),
                )
                for item in app.inputs
            ),
            enabled=app.enabled,
            published=app.published,
            deleted=app.deleted,
        )
        for app in apps
    ]
    _refuse_shared_keys(resolved, [app.apiKey for app in apps])
    return resolved


def stand_in_apps_file(path: Path, env: Mapping[str, str]) -> list[DifyApp]:
    """The stand-in apps listed in a YAML file (the ``emulator.dify`` format: a list of
    ``{apiKey, mode, name, inputs, enabled, published, deleted}``), for ``emulator serve
    --dify-apps`` and ``emulator dify --apps``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the Dify stand-in apps in {path}: {type(exc).__name__}",
            hint="give a YAML list of {apiKey: KEY, mode: chat, ...}",
        ) from None
    try:
        apps = TypeAdapter(list[StandInApp]).validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = format_path(tuple(part for part in first["loc"] if isinstance(part, str | int)))
        raise ConfigError(
            f"{path}: {where or 'the file'}: {first['msg']}",
            hint="each app is {apiKey: KEY, mode: chat|agent-chat|advanced-chat|"
            "completion|workflow|agent, name, inputs: [{variable, required, type, maxLength,"
            " options}]}",
        ) from None
    return stand_in_apps(apps, env)


def _refuse_shared_keys(apps: Sequence[DifyApp], written: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for index, app in enumerate(apps):
        if app.api_key in seen:
            first = seen[app.api_key]
            raise ConfigError(
                f"Dify stand-in apps {first} ({written[first]}) and {index} "
                f"({written[index]}) have the same key",
                hint="a key names one app: give each stand-in app its own variable",
            )
        seen[app.api_key] = index


class _Emulator(NamedTuple):
    server: type[EmulatorServer]
    stand_in: type[DifyStandIn]
    dify_app: type[DifyApp]
    dify_input: type[DifyInput]
    database: Callable[[str, Path], Path]
    profile: type[Profile]


def _emulator() -> _Emulator:
    """The embedded emulator: the ``[emulator]`` extra, imported here only, when an app is
    local."""
    with requires_extra("emulator"):
        from provisioner.emulator.bots.profile import Profile
        from provisioner.emulator.dify.apps import DifyApp, DifyInput
        from provisioner.emulator.dify.server import DifyStandIn
        from provisioner.emulator.server import EmulatorServer, local_database

    return _Emulator(EmulatorServer, DifyStandIn, DifyApp, DifyInput, local_database, Profile)
