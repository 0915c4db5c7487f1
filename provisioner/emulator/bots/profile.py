"""The emulator's profile: how it answers where RongCloud's docs are silent.

A profile holds one value per observation of a probe report
(:mod:`provisioner.rongcloud.observations`): :data:`DEFAULT_OBSERVATIONS` are the emulator's
own assumptions (``docs/emulator.md``), and ``emulator serve --profile FILE`` (or
``emulator: {profile: FILE}`` in an ``endpoint: local`` app.yaml) replaces them with what
``provisioner probe`` observed of a real app, so that the emulator answers as that app did.
Two shorthands change a default without a file: ``--update-semantics patch`` and
``--generic-1002`` (duplicates and missing bots answer RongCloud's generic 1002).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provisioner.emulator import codes
from provisioner.emulator.validation import BotRules, Rejection
from provisioner.errors import ConfigError
from provisioner.rongcloud.observations import (
    BODY_LIMIT_CEILING,
    NAMES,
    Observations,
    error,
    error_code,
    read_report,
    value_problem,
)

DEFAULT_BODY_LIMIT = 100 * 1024
"""RongCloud's code table: 1508 "http 请求体过大，应小于 100 k" (keep a body under 100 KB)."""

DEFAULT_OBSERVATIONS: Observations = {
    "update_omitted_fields": "replace",
    "get_unknown_id": "absent",
    "delete_absent": error(codes.CODE_NOT_FOUND),
    "duplicate_create": error(codes.CODE_DUPLICATE_USER_ID),
    "bot_quota": error(codes.CODE_TOO_MANY),
    "two_integrations_same_type": error(codes.CODE_PARAMETER),
    "numeric_metadata": "accepted",
    "api_key_on_read": "plain",
    "body_limit_bytes": DEFAULT_BODY_LIMIT,
    "nonce_reuse": "accepted",
}
"""What the emulator does unless told otherwise: its assumptions, each numbered in
``docs/emulator.md`` with the observation that settles it."""

GENERIC_1002: dict[str, str] = {
    "duplicate_create": error(codes.CODE_PARAMETER),
    "delete_absent": error(codes.CODE_PARAMETER),
}
"""``--generic-1002``: a duplicate ``userId`` and a missing bot (delete, and so update) answer
400 / 1002, RongCloud's generic parameter error, instead of the invented 1010 and 1404."""

UpdateSemantics = Literal["replace", "patch"]
ApiKeys = Literal["plain", "masked", "absent"]

_STATUS = {
    codes.CODE_PARAMETER: codes.STATUS_BAD_REQUEST,
    codes.CODE_SIGNATURE: codes.STATUS_UNAUTHORIZED,
    codes.CODE_RATE_LIMITED: codes.STATUS_TOO_MANY_REQUESTS,
    codes.CODE_NOT_FOUND: codes.STATUS_NOT_FOUND,
    codes.CODE_BODY_TOO_LARGE: codes.STATUS_PAYLOAD_TOO_LARGE,
}


def status_for(code: int) -> int:
    """The HTTP status the emulator sends with ``code``: that of its own use of the code
    (401 for 1004, 404 for 1404...), a plain 400 for any other."""
    return _STATUS.get(code, codes.STATUS_BAD_REQUEST)


@dataclass(frozen=True)
class Profile:
    """One value per observation (see the module docstring); ``source`` names where they
    came from, for the start-up banner."""

    observations: Observations = field(default_factory=lambda: dict(DEFAULT_OBSERVATIONS))  # type: ignore[assignment]
    source: str = "defaults"

    @classmethod
    def from_file(cls, path: Path) -> Profile:
        """The observations of the probe report ``path`` (ConfigError naming file and field)."""
        return cls(read_report(path)["observations"], source=str(path))

    def changed(self, source: str, **values: str | int | None) -> Profile:
        """A copy with some observations changed (ConfigError for an unknown name or value)."""
        merged = dict(self.observations)
        for name, value in values.items():
            if name not in NAMES:
                raise ConfigError(f"unknown observation {name}", hint=f"use any of {NAMES}")
            problem = value_problem(name, value)
            if problem is not None:
                raise ConfigError(f"profile {name}: {problem}")
            merged[name] = value
        shown = source if self.source == "defaults" else f"{self.source} + {source}"
        return Profile(merged, source=shown)  # type: ignore[arg-type]

    def refusal(self, name: str, message: str) -> Rejection | None:
        """The error observation ``name`` answers with (its code, :func:`status_for`), or
        ``None`` when the observation is not an error."""
        code = error_code(self.observations[name])  # type: ignore[literal-required]
        if code is None:
            return None
        return Rejection(status_for(code), code, message, invented=code in codes.INVENTED_CODES)

    @property
    def bot_rules(self) -> BotRules:
        return BotRules(
            numeric_metadata=error_code(self.observations["numeric_metadata"]),
            same_type=error_code(self.observations["two_integrations_same_type"]),
        )

    @property
    def update_semantics(self) -> UpdateSemantics | None:
        """``replace`` or ``patch``; ``None`` when an update leaving fields out is refused."""
        value = self.observations["update_omitted_fields"]
        return value if value in ("replace", "patch") else None  # type: ignore[return-value]

    @property
    def api_keys(self) -> ApiKeys:
        return self.observations["api_key_on_read"]  # type: ignore[return-value]

    @property
    def body_limit(self) -> int:
        """The largest bot API body taken; a report's null (none found below 1 MiB) is 1 MiB."""
        return self.observations["body_limit_bytes"] or BODY_LIMIT_CEILING

    @property
    def has_quota(self) -> bool:
        return error_code(self.observations["bot_quota"]) is not None

    @property
    def nonce_reuse_code(self) -> int | None:
        """The code a reused nonce is refused with (HTTP 401), or ``None``: accepted."""
        return error_code(self.observations["nonce_reuse"])
