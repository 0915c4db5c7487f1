"""The ``${NAME}`` rules of a manifest: well-formed references, none in a bot's identity, and
(with ``--require-env``) every referenced variable set. Messages name variables, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from provisioner.diagnostics import Diagnostic, JsonPath, diagnostic_at
from provisioner.manifest import Document
from provisioner.secrets import REFERENCE, is_available, unavailable_error

ENV_MISSING = "env-missing"
_UNAVAILABLE = re.compile(r"environment variable ([A-Za-z_][A-Za-z0-9_]*) is (?:not set|empty)$")
"""The messages of :func:`provisioner.secrets.unavailable_error`."""

IDENTITY_PATHS: frozenset[JsonPath] = frozenset({("userId",)})
"""Fields that name a bot: they must be the same text in git, in state and on the server."""


def reference_checks(document: Document, env: Mapping[str, str] | None) -> list[Diagnostic]:
    """Malformed ``${...}`` references, a reference in the bot's identity (``userId``); with
    ``env``, referenced variables that are unset or empty."""
    found: list[Diagnostic] = []
    if document.dollar_strings is None:
        candidates = _strings_with("${", document.value)
    else:
        candidates = [(path, _value_at(document.value, path)) for path in document.dollar_strings]
    for path, text in candidates:
        starts = [match.start() for match in REFERENCE.finditer(text)]
        if any(index not in starts for index in _all_indexes(text, "${")):
            found.append(_malformed(document, path))
        if path in IDENTITY_PATHS and starts:
            found.append(_identity_reference(document, path))
        if env is not None:
            found.extend(_unavailable(document, path, text, env))
    return found


def unset_variable(diagnostic: Diagnostic) -> str | None:
    """The variable an ``env-missing`` diagnostic is about (None for any other)."""
    match = _UNAVAILABLE.match(diagnostic.message) if diagnostic.code == ENV_MISSING else None
    return match.group(1) if match else None


def _value_at(value: Any, path: JsonPath) -> Any:
    for part in path:
        value = value[part]
    return value


def _strings_with(needle: str, value: Any, path: JsonPath = ()) -> list[tuple[JsonPath, str]]:
    """Every string value holding ``needle``, with its path (keys are not values)."""
    found: list[tuple[JsonPath, str]] = []
    if isinstance(value, str):
        if needle in value:
            found.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, bool | int | float) and item is not None:
                found.extend(_strings_with(needle, item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_strings_with(needle, item, (*path, index)))
    return found


def _all_indexes(text: str, needle: str) -> Iterator[int]:
    index = text.find(needle)
    while index != -1:
        yield index
        index = text.find(needle, index + 1)


def _malformed(document: Document, path: JsonPath) -> Diagnostic:
    return diagnostic_at(
        document.file,
        document.location(path),
        path,
        "reference-malformed",
        "`${` does not start a valid ${NAME} environment reference",
        "write ${NAME}: letters, digits and underscores, not starting with a digit",
    )


def _identity_reference(document: Document, path: JsonPath) -> Diagnostic:
    return diagnostic_at(
        document.file,
        document.location(path),
        path,
        "reference-in-identity",
        "userId is the bot's identity and cannot come from the environment: state would"
        " record the reference and the server its value, so the plan could never converge",
        "write the userId literally (it is not a secret: every message to the bot names it)",
    )


def _unavailable(
    document: Document, path: JsonPath, text: str, env: Mapping[str, str]
) -> list[Diagnostic]:
    """An ``env-missing`` diagnostic per variable of ``text`` that is unset or empty."""
    found = []
    for name in dict.fromkeys(REFERENCE.findall(text)):
        if not is_available(name, env):
            error = unavailable_error(name, env)
            found.append(
                diagnostic_at(
                    document.file,
                    document.location(path),
                    path,
                    ENV_MISSING,
                    error.message,
                    error.hint,
                )
            )
    return found
