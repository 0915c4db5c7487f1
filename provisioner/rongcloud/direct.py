"""Direct calls with an app's own credentials: what ``provisioner api`` and ``sign APP`` need.

- :func:`load_settings` reads only ``app.yaml`` of an app folder (its bots may be broken: a
  direct call does not need them) into a :class:`~provisioner.models.DesiredApp` without
  bots, which :func:`provisioner.connect.connect` turns into a client;
- :func:`credentials` resolves the app key, secret and hosts for signing by hand;
- :func:`parse_body` reads a JSON body (ConfigError with line and column when malformed);
- :func:`form_fields` flattens it for the form-encoded legacy APIs;
- :func:`curl_command` prints one signed request as a copy-pasteable curl command;
- :data:`READ_PATHS` are the calls known to be reads, the only ones repeated after they may
  have reached the server (every other call is sent once, like the client's writes).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError, ManifestError
from provisioner.models import DesiredApp

READ_PATHS = frozenset({"/v3/bot/get.json", "/v3/bot/query.json"})
"""Paths documented as reads (RongCloud's bot get and list): retried after a timeout, a
dropped connection or a 5xx, failing over to the backup host. Nothing else is: a call whose
effect is unknown is never sent twice."""

_PATH = re.compile(r"^/[A-Za-z0-9._~/-]+$")


def check_path(path: str) -> str:
    """``path`` when it is a server API path such as ``/v3/bot/query.json``."""
    if not _PATH.match(path) or "//" in path or "/../" in f"{path}/":
        raise ConfigError(
            f"{path!r} is not a RongCloud API path",
            hint="give the path from RongCloud's docs, starting with /, e.g. /v3/bot/query.json"
            " or /message/private/publish.json (the host comes from the app's endpoint)",
        )
    return path


def load_settings(folder: Path, env: Mapping[str, str]) -> DesiredApp:
    """The app of ``folder`` from its ``app.yaml`` alone (no bots). ManifestError listing
    every problem of app.yaml (``file:line:col: field: message``)."""
    from pydantic import ValidationError

    from provisioner.manifest import load_document
    from provisioner.models import AppSettings
    from provisioner.validate import APP_FILE, check_document, display_path
    from provisioner.workspace import REFRESH_FIELDS, format_diagnostic

    path = folder / APP_FILE
    if not path.is_file():
        raise ConfigError(
            f"{display_path(path)} does not exist",
            hint="create it with `provisioner init APP`, or give another app",
        )
    document = load_document(path, display_path(path))
    problems = [d for d in check_document(document, "app", env=env) if d.severity == "error"]
    unset = [d for d in problems if d.code == "env-missing" and d.path in REFRESH_FIELDS]
    if problems and len(unset) < len(problems):
        lines = "\n".join(f"  {format_diagnostic(d)}" for d in problems)
        raise ManifestError(
            f"{display_path(path)} has {len(problems)} error(s):\n{lines}",
            hint="fix them (`provisioner validate` shows the details), then run again",
        )
    try:
        settings = AppSettings.model_validate(document.value)
    except ValidationError as exc:  # the schema accepted it: a disagreement is a bug
        raise ManifestError(
            f"{display_path(path)} is not valid app settings",
            hint="run `provisioner validate` and report this bug",
        ) from exc
    name = folder.absolute().name
    return DesiredApp(name=name, folder=folder, settings=settings, bots=(), sources={})


@dataclass(frozen=True)
class Credentials:
    """What signing a request by hand needs. ``repr`` leaves the secret out."""

    app_key: str
    app_secret: str = field(repr=False)
    hosts: tuple[str, ...]


def credentials(app: DesiredApp, env: Mapping[str, str]) -> Credentials:
    """The app's key, secret and hosts, references resolved; ConfigError when a variable is
    unset or the endpoint is ``local`` (the embedded emulator has no fixed address)."""
    from provisioner.connect import LOCAL_ENDPOINT, app_endpoint, missing_credentials
    from provisioner.rongcloud import hosts_for_endpoint
    from provisioner.secrets import resolve

    missing = missing_credentials(app, env)
    if missing:
        exports = " ".join(f"{name}=..." for name in missing if " " not in name)
        raise ConfigError(
            f"app {app.name}: cannot sign without {', '.join(missing)}",
            hint=f"export {exports}" if exports else "set appKey and appSecret in app.yaml",
        )
    endpoint = app_endpoint(app, env)
    settings = app.settings
    if endpoint == LOCAL_ENDPOINT or settings.appKey is None or settings.appSecret is None:
        raise ConfigError(
            f"app {app.name} uses endpoint: local, the embedded emulator, which has no fixed"
            " address or secret to sign for",
            hint=f"call it with `provisioner api {app.name} PATH`, or run `provisioner emulator"
            " serve` and sign for its app key",
        )
    return Credentials(
        app_key=resolve(settings.appKey, env),
        app_secret=resolve(settings.appSecret, env),
        hosts=tuple(hosts_for_endpoint(endpoint)),
    )


def parse_body(text: str, where: str) -> dict[str, Any]:
    """The JSON object in ``text`` (``where`` names it: "the JSON argument", "standard input").
    Empty text is ``{}``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where} is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint='give one JSON object, e.g. \'{"page": 1, "pageSize": 20}\' (in single quotes'
            " in the shell)",
        ) from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply", hint="give a flat JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} is JSON but not an object (got {type(value).__name__})",
            hint='give one JSON object: {"name": value, ...}',
        )
    return value


def form_fields(body: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """``body`` for a form-encoded API: strings as they are, numbers and booleans as JSON
    text (``true``), lists as a repeated parameter, objects as JSON text (``content``)."""
    fields: dict[str, str | list[str]] = {}
    for key, value in body.items():
        if isinstance(value, list):
            fields[key] = [_form_value(item) for item in value]
        else:
            fields[key] = _form_value(value)
    return fields


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def curl_command(
    url: str, headers: Mapping[str, str], body: Mapping[str, Any], *, form: bool
) -> str:
    """One POST as a curl command, one option a line (the body in shell quotes)."""
    parts = [f"curl -sS -X POST {shlex.quote(url)}"]
    parts += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
    if form:
        for key, value in form_fields(body).items():
            for item in value if isinstance(value, list) else [value]:
                parts.append(f"--data-urlencode {shlex.quote(f'{key}={item}')}")
    else:
        parts.append(f"-H {shlex.quote('Content-Type: application/json')}")
        text = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":"))
        parts.append(f"--data-raw {shlex.quote(text)}")
    return " \\\n  ".join(parts)
