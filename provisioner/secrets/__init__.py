"""``${NAME}`` references: values taken from the environment, and therefore secrets.

Every string that contains a reference is sensitive: it is masked in every output and recorded
in state only as a salted fingerprint (:func:`fingerprint`). The values themselves are kept
out of every output by :func:`redact` (the client's error messages, the CLI's streams).

A variable that is set but empty counts as unset: that is what a CI runner gives for a
secret that does not exist. A value that is not valid UTF-8 (an environment in another
encoding) is refused: it cannot be sent or fingerprinted. Neither error prints the value.

Nothing here reads ``os.environ``; the environment is passed in as a mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from provisioner.errors import ConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A reference: ``${NAME}`` where NAME is an environment variable name."""

FINGERPRINT_PREFIX = "hmac-sha256:"
SENSITIVE_KEY = "sensitive"
TEMPLATE_KEY = "template"
"""A secret in a canonical form (plans, state) is a marker ``{"sensitive": <fingerprint>,
"template": <the string as written in git>}``; states written before templates were
recorded hold ``{"sensitive": <fingerprint>}``."""
MASK = "(sensitive)"
MIN_REDACTED_LENGTH = 6
"""Shorter values are not searched for in text (``s`` would shred every message); a real
secret is longer. GitHub's log masking makes the same trade."""


def references(value: str) -> list[str]:
    """Names referenced in ``value``, in order of appearance."""
    return REFERENCE.findall(value)


def is_sensitive(value: object) -> bool:
    """True when ``value`` is a string holding at least one ``${NAME}`` reference."""
    return isinstance(value, str) and REFERENCE.search(value) is not None


def is_sensitive_value(value: object) -> bool:
    """True for a sensitive marker (see :data:`TEMPLATE_KEY`)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get(SENSITIVE_KEY), str)
        and set(value) <= {SENSITIVE_KEY, TEMPLATE_KEY}
        and isinstance(value.get(TEMPLATE_KEY, ""), str)
    )


def is_available(name: str, env: Mapping[str, str]) -> bool:
    """Set, and not empty (an empty value is what CI gives for a missing secret)."""
    return bool(env.get(name))


def unavailable_error(name: str, env: Mapping[str, str]) -> ConfigError:
    """Why ``name`` cannot be used: unset or empty (never its value)."""
    if name in env:
        return ConfigError(
            f"environment variable {name} is empty",
            hint=f"set {name} to the secret's value; in CI, check that the secret exists and"
            " is passed to this job (a missing secret arrives as an empty string)",
        )
    return ConfigError(
        f"environment variable {name} is not set",
        hint=f"export {name}=... before running, or pass it as a CI secret",
    )


def resolve(value: str, env: Mapping[str, str]) -> str:
    """Replace every reference in ``value`` by its value in ``env``.

    Raises ConfigError naming the first variable that is unset, empty or not valid UTF-8
    (never printing any value).
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not is_available(name, env):
            raise unavailable_error(name, env)
        found = env[name]
        if not _is_utf8(found):
            raise ConfigError(
                f"environment variable {name} is not valid UTF-8",
                hint=f"set {name} from a UTF-8 source (its bytes could not be decoded)",
            )
        return found

    return REFERENCE.sub(substitute, value)


def referenced_values(texts: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """The values of every variable referenced in ``texts`` that is available: what must
    never be printed. Longest first, without duplicates."""
    values = {env[name] for text in texts for name in references(text) if is_available(name, env)}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of at least :data:`MIN_REDACTED_LENGTH` characters)
    replaced by ``(sensitive)``; the longest first, so one that contains another goes whole."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text


class Redactor:
    """:func:`redact` for one set of secrets and many texts (every line a command prints), in
    time that does not grow with the number of secrets: a fleet's run masks two secrets per
    app, and testing each against each line made printing N apps' progress cost N × N.

    The secrets are indexed by their first :data:`MIN_REDACTED_LENGTH` characters; a text is
    scanned once for the secrets that occur in it, which then go as :func:`redact` does."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._by_head: dict[str, list[str]] = {}
        for secret in set(secrets):
            if len(secret) >= MIN_REDACTED_LENGTH:
                self._by_head.setdefault(secret[:MIN_REDACTED_LENGTH], []).append(secret)

    def __call__(self, text: str) -> str:
        if not self._by_head:
            return text
        found: set[str] = set()
        for start in range(len(text) - MIN_REDACTED_LENGTH + 1):
            candidates = self._by_head.get(text[start : start + MIN_REDACTED_LENGTH])
            if candidates:
                found.update(each for each in candidates if text.startswith(each, start))
        return redact(text, found) if found else text


def fingerprint(value: str, salt: str) -> str:
    """Salted, one-way fingerprint of a secret value, safe to store in state."""
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes of the environment
        return False
    return True
