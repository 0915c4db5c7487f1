"""``${NAME}`` references: values taken from the environment, and therefore secrets.

Every string that contains a reference is sensitive: it is masked in every output and recorded
in state only as a salted fingerprint (:func:`fingerprint`). Nothing here reads ``os.environ``;
the environment is passed in as a mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from provisioner.errors import ConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A reference: ``${NAME}`` where NAME is an environment variable name."""

FINGERPRINT_PREFIX = "hmac-sha256:"
MASK = "(sensitive)"


def references(value: str) -> list[str]:
    """Names referenced in ``value``, in order of appearance."""
    return REFERENCE.findall(value)


def is_sensitive(value: object) -> bool:
    """True when ``value`` is a string holding at least one ``${NAME}`` reference."""
    return isinstance(value, str) and REFERENCE.search(value) is not None


def resolve(value: str, env: Mapping[str, str]) -> str:
    """Replace every reference in ``value`` by its value in ``env``.

    Raises ConfigError naming the first missing variable (never printing any value).
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"environment variable {name} is not set",
                hint=f"export {name}=... before running, or pass it as a CI secret",
            )
        return env[name]

    return REFERENCE.sub(substitute, value)


def fingerprint(value: str, salt: str) -> str:
    """Salted, one-way fingerprint of a secret value, safe to store in state."""
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    return FINGERPRINT_PREFIX + digest
