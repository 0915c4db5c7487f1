"""Raw calls to RongCloud's server API: what ``provisioner api`` and ``sign APP`` send, with
the app's own credentials (resolved by :func:`provisioner.connect.credentials`).

- :func:`check_path` accepts only a server API path such as ``/v3/bot/query.json``;
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
from typing import Any

from provisioner.errors import ConfigError

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
