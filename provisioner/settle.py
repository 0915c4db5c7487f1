"""Settling one change: the call, and when its outcome is unknown, a read back before any
second write (never a blind repeat).

- create, ambiguous or answered "duplicate userId" (1010): read back; present and equal to
  the desired bot → applied; present but different → update; absent → create once more.
- update/adopt, ambiguous: read back; equal → applied; different → update once more; absent →
  failed (the bot was deleted outside git; re-plan). Answered 1404 → the same failure.
- delete, ambiguous: read back; absent → applied; present → delete once more. A delete
  answered "unknown bot" (1404) is applied.

"Equal" compares canonical forms (:func:`canonical_matcher`): a masked live apiKey matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioner.canonical import SERVER_FIELDS, canonical_live
from provisioner.errors import AmbiguousWriteError, ApiError, ProvisionerError, StateError
from provisioner.plan import Change
from provisioner.rongcloud.models import BotPayload

CODE_DUPLICATE_USER_ID = 1010
CODE_UNKNOWN_BOT = 1404
MAX_WRITES_PER_CHANGE = 2
"""The first call, plus at most one more after reading the bot back."""


class BotApi(Protocol):
    """The part of :class:`provisioner.rongcloud.RongCloudClient` that apply uses."""

    def create_bot(self, payload: BotPayload) -> object: ...

    def update_bot(self, payload: BotPayload) -> object: ...

    def delete_bot(self, user_id: str) -> object: ...

    def get_bots(self, user_ids: Sequence[str]) -> list[BotPayload]: ...


Matcher = Callable[[Change, BotPayload], bool]
"""``matcher(change, live)``: True when the live bot already is ``change.after``."""


# --- comparing a live bot with the desired one ------------------------------------------------


def canonical_matcher(salt: str) -> Matcher:
    """Compare canonical forms: the live bot, fingerprinted with the state's ``salt`` like the
    desired spec, equals ``change.after``. A masked live apiKey counts as matching."""

    def matches(change: Change, live: BotPayload) -> bool:
        return change.after is not None and canonical_live(live, salt, change.after) == change.after

    return matches


def server_fields(answer: object) -> dict[str, Any]:
    """What the server returned worth recording (timestamps), from a BotPayload answer."""
    if not isinstance(answer, BotPayload):
        return {}
    return {name: getattr(answer, name) for name in SERVER_FIELDS if getattr(answer, name)}


# --- one change -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    server: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


class ChangeRunner:
    """Runs one change to a settled outcome (returns) or a failure (raises ProvisionerError)."""

    def __init__(self, api: BotApi, matcher: Matcher) -> None:
        self.api = api
        self.matcher = matcher

    def run(self, change: Change, payload: BotPayload | None) -> Settled:
        if change.action == "delete":
            return self.delete(change.user_id)
        if payload is None:
            raise StateError(
                f"no desired bot for {change.action} of {change.user_id}",
                hint="this is a bug in provisioner; re-run with --debug",
            )
        if change.action == "adopt" and not change.fields:
            return Settled(note="already as declared; recorded without a call")
        if change.action == "update" and all(diff.path == "protect" for diff in change.fields):
            return Settled(note="only protect changed; recorded without a call")
        first = "create" if change.action == "create" else "update"
        return self.write(first, change, payload)

    def write(self, first: str, change: Change, payload: BotPayload) -> Settled:
        """Create or update, settling ambiguity by reading back before any second write."""
        action = first
        note: str | None = None
        for _ in range(MAX_WRITES_PER_CHANGE):
            try:
                answer = self._call(action, payload)
                return Settled(server_fields(answer), note)
            except AmbiguousWriteError as exc:
                cause: ProvisionerError = exc
                note = f"{action} outcome unknown; settled by reading back"
            except ApiError as exc:
                if first == "update" and exc.code == CODE_UNKNOWN_BOT:
                    raise _missing_error(payload.userId, exc) from exc
                if not (action == "create" and exc.code == CODE_DUPLICATE_USER_ID):
                    raise
                cause = exc
                note = "already existed on the server; adopted"
            live = self.read_back(payload.userId, action, cause)
            if live is not None and self.matcher(change, live):
                return Settled(server_fields(live), note)
            if live is None and first == "update":
                raise _missing_error(payload.userId, cause)
            action = "create" if live is None else "update"
        raise cause

    def delete(self, user_id: str) -> Settled:
        note: str | None = None
        for _ in range(MAX_WRITES_PER_CHANGE):
            try:
                self.api.delete_bot(user_id)
                return Settled(note=note)
            except ApiError as exc:
                if exc.code != CODE_UNKNOWN_BOT:
                    raise
                return Settled(note=note or "already absent on the server")
            except AmbiguousWriteError as exc:
                cause = exc
                note = "delete outcome unknown; settled by reading back"
            if self.read_back(user_id, "delete", cause) is None:
                return Settled(note=note)
        raise cause

    def read_back(self, user_id: str, action: str, cause: ProvisionerError) -> BotPayload | None:
        try:
            found = self.api.get_bots([user_id])
        except ProvisionerError as exc:
            raise AmbiguousWriteError(
                f"{action} of {user_id} may or may not have been applied ({cause.message}), "
                f"and reading it back failed: {exc.message}",
                endpoint=getattr(cause, "endpoint", "/v3/bot/get.json"),
                hint="re-run `provisioner apply`: it reads the bot back and converges",
            ) from exc
        return next((bot for bot in found if bot.userId == user_id), None)

    def _call(self, action: str, payload: BotPayload) -> object:
        if action == "create":
            return self.api.create_bot(payload)
        return self.api.update_bot(payload)


def _missing_error(user_id: str, cause: ProvisionerError) -> ProvisionerError:
    message = f"bot {user_id} is not on the server (deleted outside git?)"
    hint = "run `provisioner plan` to see the drift, then apply the new plan"
    if isinstance(cause, ApiError):
        return ApiError(
            message,
            endpoint=cause.endpoint,
            http_status=cause.http_status,
            code=cause.code,
            error_message=cause.error_message,
            request_id=cause.request_id,
            hint=hint,
        )
    return StateError(message, hint=hint)
