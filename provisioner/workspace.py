"""Pipeline glue between the stages (I/O allowed): manifests -> DesiredApp, the API client
for an app, and one app's plan (recorded state + optional refresh + the pure plan).

The CLI commands ``plan`` and ``apply`` both go through here, so they load, connect and plan
the same way.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.errors import ConfigError, ManifestError, PlanError
from provisioner.plan import FORMAT_VERSION, Plan, make_plan
from provisioner.secrets import references
from provisioner.state import backend_for

if TYPE_CHECKING:
    from provisioner.diagnostics import Diagnostic
    from provisioner.models import DesiredApp
    from provisioner.rongcloud import RongCloudClient

DEFAULT_RATE_LIMIT = 50.0
"""Calls per second when an app's settings give no ``rateLimit``."""

LOCAL_ENDPOINT = "local"
RETRY_BACKOFF_ENV = "PROVISIONER_RETRY_BACKOFF"
"""Seconds: the base of the API client's retry backoff (RongCloudClient's ``backoff_base``)."""
DEFAULT_RETRY_BACKOFF = 0.5
MAX_RETRY_BACKOFF = 60.0
CREDENTIAL_FIELDS = frozenset({"appKey", "appSecret"})


def resolve_app_folders(names_or_paths: Sequence[str], bots_dir: Path) -> list[Path]:
    """App folders for the command-line arguments: an app name under ``bots_dir`` or a path
    to an app folder; no arguments means every app folder under ``bots_dir``."""
    if not names_or_paths:
        from provisioner.validate import discover_apps

        if not bots_dir.is_dir():
            raise ConfigError(
                f"no bots directory {bots_dir}",
                hint="run from the repository root, or pass --bots-dir or an app folder",
            )
        return list(discover_apps([bots_dir]))
    folders: list[Path] = []
    for arg in names_or_paths:
        candidate = Path(arg)
        named = bots_dir / arg
        if named.is_dir() and "/" not in arg and os.sep not in arg:
            folders.append(named)
        elif candidate.is_dir():
            folders.append(candidate)
        else:
            raise ConfigError(
                f"no app {arg!r}: neither {named} nor {candidate} is a folder",
                hint=f"give an app name under {bots_dir}/ or the path to an app folder",
            )
    return folders


def load_apps(
    names_or_paths: Sequence[str], bots_dir: Path, *, env: Mapping[str, str] | None = None
) -> list[DesiredApp]:
    """Load and validate the apps named on the command line (see :func:`resolve_app_folders`).

    Every error of every app is collected into one ManifestError whose message lists them as
    ``file:line:col: path: message``.
    """
    from provisioner.validate import validate_app

    environ = os.environ if env is None else env
    apps: list[DesiredApp] = []
    errors: list[Diagnostic] = []
    for folder in resolve_app_folders(names_or_paths, bots_dir):
        result = validate_app(folder, env=environ)
        problems = [d for d in result.diagnostics if _fails_load(d)]
        errors.extend(problems)
        app = result.app
        if app is None and not problems:
            # only unset credentials failed: build the app without the environment check
            app = validate_app(folder, env=None).app
        if app is not None and not problems:
            apps.append(app)
    if errors:
        raise _manifest_error(errors)
    return apps


def _fails_load(diagnostic: Diagnostic) -> bool:
    """Errors fail loading, except unset credential variables in app.yaml: only a refresh
    needs those, and :func:`connect` reports them with a --no-refresh hint."""
    credential = (
        diagnostic.code == "env-missing"
        and diagnostic.path in CREDENTIAL_FIELDS
        and Path(diagnostic.file).name == "app.yaml"
    )
    return diagnostic.severity == "error" and not credential


def _manifest_error(errors: Sequence[Diagnostic]) -> ManifestError:
    from provisioner.validate import diagnostic_order

    ordered = sorted(errors, key=diagnostic_order)
    lines = "\n".join(f"  {format_diagnostic(d)}" for d in ordered)
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    unset = [
        name for d in errors if d.code == "env-missing" for name in references_in_message(d.message)
    ]
    if unset and len(unset) == len(errors):
        exports = " ".join(f"{name}=..." for name in dict.fromkeys(unset))
        hint = (
            f"the plan fingerprints every referenced secret: export {exports} (in CI, pass them"
            " as secrets), then run again"
        )
    else:
        hint = "fix them (`provisioner validate` shows the details), then run again"
    return ManifestError(f"the manifests have {count}:\n{lines}", hint=hint)


def references_in_message(message: str) -> list[str]:
    """The variable named by an ``environment variable NAME is not set`` message."""
    match = _UNSET.search(message)
    return [match.group(1)] if match else []


_UNSET = re.compile(r"environment variable ([A-Za-z_][A-Za-z0-9_]*) is not set")


def format_diagnostic(diagnostic: Diagnostic) -> str:
    """``file:line:col: path: message`` (one line)."""
    where = f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}"
    field = f"{diagnostic.path}: " if diagnostic.path else ""
    return f"{where}: {field}{diagnostic.message}"


def missing_credentials(app: DesiredApp, env: Mapping[str, str]) -> list[str]:
    """What keeps a refresh from calling the API: unset variables referenced by
    ``appKey``/``appSecret`` or an absent setting (empty list: ready; ``local`` always is)."""
    settings = app.settings
    if settings.endpoint == LOCAL_ENDPOINT:
        return []
    missing: list[str] = []
    for field, value in (("appKey", settings.appKey), ("appSecret", settings.appSecret)):
        if value is None:
            missing.append(f"{field} (not set in app.yaml)")
            continue
        missing.extend(name for name in references(value) if name not in env)
    return missing


@contextmanager
def connect(app: DesiredApp, env: Mapping[str, str]) -> Iterator[RongCloudClient]:
    """A client for the app's API. ``endpoint: local`` starts the embedded emulator for the
    block (state under ``.provisioner/`` of the working directory)."""
    from provisioner.rongcloud import RongCloudClient, hosts_for_endpoint

    settings = app.settings
    rate_limit = settings.rateLimit or DEFAULT_RATE_LIMIT
    backoff = retry_backoff(env)
    if settings.endpoint == LOCAL_ENDPOINT:
        from provisioner.emulator import EmulatorServer

        with EmulatorServer.local(app.name, Path.cwd()) as server:
            app_key, app_secret = next(iter(server.apps.items()))
            with RongCloudClient(
                app_key=app_key,
                app_secret=app_secret,
                hosts=[server.url],
                rate_limit=rate_limit,
                backoff_base=backoff,
            ) as client:
                yield client
        return
    missing = missing_credentials(app, env)
    if missing or settings.appKey is None or settings.appSecret is None:
        raise _credentials_error(app, missing)
    from provisioner.secrets import resolve

    with RongCloudClient(
        app_key=resolve(settings.appKey, env),
        app_secret=resolve(settings.appSecret, env),
        hosts=hosts_for_endpoint(settings.endpoint),
        rate_limit=rate_limit,
        backoff_base=backoff,
    ) as client:
        yield client


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


def plan_app(
    app: DesiredApp,
    env: Mapping[str, str],
    *,
    refresh: bool,
    allow_empty: bool,
    client: RongCloudClient | None,
) -> Plan:
    """Read the app's recorded state, list its live bots when ``refresh`` (needs ``client``),
    and make the plan."""
    recorded = backend_for(app).read()
    if refresh and client is None:
        raise ConfigError(f"app {app.name}: a refresh needs an API client")
    live = client.query_bots() if refresh and client is not None else None
    return make_plan(app, recorded, env, live, allow_empty=allow_empty)


def plans_document(plans: Sequence[Plan]) -> dict[str, Any]:
    """The JSON document of ``plan --out``/``--format json``:
    ``{"format_version": 1, "plans": [plan.document, ...]}`` in app order."""
    return {"format_version": FORMAT_VERSION, "plans": [plan.document for plan in plans]}


def read_plan_file(path: Path) -> dict[str, str]:
    """The reviewed plan ids in a ``plan --out`` file: app name -> plan id."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PlanError(f"no plan file {path}", hint="pass the file `plan --out` wrote") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(
            f"{path}: not a plan file (cannot read it as JSON)",
            hint="pass the file `provisioner plan --out FILE` wrote",
        ) from exc
    plans = data.get("plans") if isinstance(data, dict) else None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION or not isinstance(plans, list):
        raise PlanError(
            f"{path}: not a plan file of format_version {FORMAT_VERSION}",
            hint="re-run `provisioner plan --out FILE` with this provisioner",
        )
    ids: dict[str, str] = {}
    for entry in plans:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("app"), str)
            and isinstance(entry.get("id"), str)
        ):
            raise PlanError(f"{path}: a plan entry has no app or id", hint="re-run plan --out")
        ids[entry["app"]] = entry["id"]
    return ids
