"""The probe report: what ``provisioner probe`` observed of RongCloud's undocumented
behaviour, and what ``provisioner emulator serve --profile`` reads to behave the same.

    {"format_version": 1, "endpoint": "https://api.sg-light-api.com",
     "observations": {"update_omitted_fields": "patch", "get_unknown_id": "absent", ...}}

Exactly the ten names of :data:`FORMS`, each with one of its forms: a word, ``error:<code>``
(the RongCloud code the call was answered with, or its HTTP status when the answer carried
none), or for ``body_limit_bytes`` a whole number (or null: no limit below 1 MiB). A report
holds no secret: no key, no secret, no bot body. Pure values, and one reader for files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

from provisioner.errors import ConfigError

FORMAT_VERSION = 1
ERROR_PREFIX = "error:"
ERROR = "error:<code>"
"""Where a form is any ``error:`` followed by a code."""
LIMIT = "<bytes>|null"
"""The form of ``body_limit_bytes``."""
BODY_LIMIT_CEILING = 1024 * 1024
"""The largest body the probe sends (1 MiB): a server that takes it has no limit below."""

FORMS: dict[str, tuple[str, ...]] = {
    "update_omitted_fields": ("replace", "patch", ERROR),
    "get_unknown_id": ("absent", ERROR),
    "delete_absent": ("ok", ERROR),
    "duplicate_create": (ERROR, "ok"),
    "bot_quota": (ERROR, "ok"),
    "two_integrations_same_type": ("accepted", ERROR),
    "numeric_metadata": ("accepted", ERROR),
    "api_key_on_read": ("plain", "masked", "absent"),
    "body_limit_bytes": (LIMIT,),
    "nonce_reuse": ("accepted", ERROR),
}
"""Every observation and the forms its value takes (``bot_quota``: the answer to an 11th
create, ``ok`` only where a server has a larger quota)."""
NAMES = tuple(FORMS)


class Observations(TypedDict):
    update_omitted_fields: str
    get_unknown_id: str
    delete_absent: str
    duplicate_create: str
    bot_quota: str
    two_integrations_same_type: str
    numeric_metadata: str
    api_key_on_read: str
    body_limit_bytes: int | None
    nonce_reuse: str


class ProbeReport(TypedDict):
    """The JSON document ``provisioner probe`` writes."""

    format_version: int
    endpoint: str
    observations: Observations


def error(code: int) -> str:
    """``error:<code>``."""
    return f"{ERROR_PREFIX}{code}"


def error_code(value: object) -> int | None:
    """The code of an ``error:<code>`` value; ``None`` for any other value."""
    if not isinstance(value, str) or not value.startswith(ERROR_PREFIX):
        return None
    digits = value.removeprefix(ERROR_PREFIX)
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 10 else None


def value_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a form of observation ``name`` (``None``: it is one)."""
    forms = FORMS[name]
    if forms == (LIMIT,):
        if value is None or (type(value) is int and 0 < value <= BODY_LIMIT_CEILING):
            return None
        return f"must be a whole number of bytes from 1 to {BODY_LIMIT_CEILING}, or null"
    if value in forms or (ERROR in forms and error_code(value) is not None):
        return None
    return "must be one of " + ", ".join(forms)


def parse_report(data: object, source: str) -> ProbeReport:
    """``data`` (a decoded report) checked: ConfigError naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise _bad(source, "the file", "must be a JSON object")
    if data.get("format_version") != FORMAT_VERSION:
        raise _bad(source, "format_version", f"must be {FORMAT_VERSION}")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str):
        raise _bad(source, "endpoint", "must be a string")
    found = data.get("observations")
    if not isinstance(found, dict):
        raise _bad(source, "observations", "must be an object")
    unknown = sorted(set(found) - set(NAMES))
    if unknown:
        raise _bad(source, f"observations.{unknown[0]}", "is not an observation")
    for name in NAMES:
        if name not in found:
            raise _bad(source, f"observations.{name}", "is missing")
        problem = value_problem(name, found[name])
        if problem is not None:
            raise _bad(source, f"observations.{name}", problem)
    observations: Observations = {  # rebuilt field by field: checked above
        "update_omitted_fields": found["update_omitted_fields"],
        "get_unknown_id": found["get_unknown_id"],
        "delete_absent": found["delete_absent"],
        "duplicate_create": found["duplicate_create"],
        "bot_quota": found["bot_quota"],
        "two_integrations_same_type": found["two_integrations_same_type"],
        "numeric_metadata": found["numeric_metadata"],
        "api_key_on_read": found["api_key_on_read"],
        "body_limit_bytes": found["body_limit_bytes"],
        "nonce_reuse": found["nonce_reuse"],
    }
    return {"format_version": FORMAT_VERSION, "endpoint": endpoint, "observations": observations}


def read_report(path: Path) -> ProbeReport:
    """The report in the file ``path``; ConfigError naming the file (and field) otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the probe report {path}: {exc.strerror or type(exc).__name__}",
            hint="give the file `provisioner probe --out FILE` wrote",
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        where = f":{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(
            f"{path}{where}: the probe report is not JSON",
            hint="give the file `provisioner probe --out FILE` wrote",
        ) from None
    return parse_report(data, str(path))


def report_text(report: ProbeReport) -> str:
    """The report as the JSON text ``probe`` writes and prints (keys in the order above)."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _bad(source: str, field: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{source}: {field}: {problem}",
        hint="a probe report is {format_version: 1, endpoint, observations: {"
        + ", ".join(NAMES)
        + "}}, as `provisioner probe` writes it",
    )
