"""PostgreSQL DSNs are secrets: spotting a literal password, and keeping a DSN out of text.

No psycopg here: ``validate`` uses this module to reject a literal password in ``state.dsn``
without loading the driver.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from provisioner.secrets import REFERENCE

_URI_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def passwords_in(dsn: str) -> list[str]:
    """Every password written in ``dsn`` (URI user info, ``?password=``, ``password=``)."""
    if dsn.startswith(_URI_SCHEMES):
        parts = urlsplit(dsn)
        found: list[str] = []
        userinfo, at, _hosts = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            found.append(unquote(userinfo.split(":", 1)[1]))
        found += parse_qs(parts.query, keep_blank_values=True).get("password", [])
        return found
    return [match.group(1).strip("'") for match in _KEYWORD_PASSWORD.finditer(dsn)]


def has_literal_password(dsn: str) -> bool:
    """True when ``dsn`` holds a password that is not made only of ``${NAME}`` references."""
    return any(REFERENCE.sub("", password).strip() for password in passwords_in(dsn))


def scrub(text: str, dsn: str) -> str:
    """``text`` without the DSN ``dsn`` or any password in it (each becomes ``***``)."""
    secrets = sorted({dsn, *passwords_in(dsn)} - {""}, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
