"""Credentials written literally into a URL: ``https://user:password@host/...`` or an obvious
credential query parameter (``?token=...``, ``key=``, ``secret=``...).

Pure string work. :mod:`provisioner.validate` warns about them (an error under ``--strict``);
:mod:`provisioner.plan.canonical` replaces each one by a short salted fingerprint, so plans, their
JSON and the state never show it, while a change of it still shows as a change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

CREDENTIAL_WORDS = frozenset(
    {
        "token",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "auth",
        "credential",
        "credentials",
    }
)
"""A query parameter is a credential when a word of its name (split at ``_``, ``-``, ``.``
and camelCase) is one of these: ``token``, ``access_token``, ``apiKey``, ``client-secret``."""

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_QUERY_VALUE = re.compile(r"(?P<name>[^&=#]+)=(?P<value>[^&#]*)")


def is_credential_name(name: str) -> bool:
    words = {word.lower() for part in re.split(r"[_.\-]", name) for word in _WORD.findall(part)}
    return bool(words & CREDENTIAL_WORDS) or name.lower() in CREDENTIAL_WORDS


def credential_places(url: str) -> list[str]:
    """Where ``url`` holds a literal credential, for messages (never the credential):
    ``the password of user:password@``, ``the query parameter token``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if not parts.scheme or not parts.netloc:
        return []
    places = []
    if _masked_userinfo(parts.netloc, lambda credential: "") != parts.netloc:
        places.append("the password of user:password@")
    for match in _QUERY_VALUE.finditer(parts.query):
        if _masked_pair(match, lambda credential: "") != match.group(0):
            places.append(f"the query parameter {match.group('name')}")
    return places


def literal_credentials(url: str) -> list[str]:
    """The credentials written literally in ``url``: the password of ``user:password@``, and
    the values of credential query parameters (those holding a ``${NAME}`` are not literal).
    Empty for anything that is not an absolute URL."""
    found: list[str] = []

    def keep(credential: str) -> str:
        found.append(credential)
        return credential

    mask_credentials(url, keep)
    return found


def mask_credentials(url: str, replace: Callable[[str], str]) -> str:
    """``url`` with each literal credential (see :func:`literal_credentials`) replaced by
    ``replace(credential)``; the rest of the text is kept as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = _masked_userinfo(parts.netloc, replace)
    query = _QUERY_VALUE.sub(lambda match: _masked_pair(match, replace), parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query or "?" in url.partition("#")[0]:
        masked += "?" + query
    if parts.fragment or "#" in url:
        masked += "#" + parts.fragment
    return masked


def _masked_userinfo(netloc: str, replace: Callable[[str], str]) -> str:
    userinfo, at, host = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon or not password or "${" in password:
        return netloc
    return f"{user}:{replace(password)}@{host}"


def _masked_pair(match: re.Match[str], replace: Callable[[str], str]) -> str:
    name, value = match.group("name"), match.group("value")
    if not value or "${" in value or not is_credential_name(name):
        return match.group(0)
    return f"{name}={replace(value)}"
