"""Settling one change: the call, and whenever its outcome is not certain, a read back before
any second write (never a blind repeat).

RongCloud documents only three failure codes for the bot API: 1002 (parameter error), 1004
(signature) and 1008 (rate limit); with those, and HTTP 401/403/429, the call did nothing.
Any other failure — ambiguous (no answer, 5xx) or answered with an undocumented code — may
have acted, or may say the bot already is (or is not) there; the bot is read back and the
change settled from what the server holds:

- create: present and equal to the desired bot → applied (adopted); present but different →
  ConflictError (the plan never overwrites a bot it did not plan for); absent → created once
  more when the outcome was unknown, else the answered error stands.
- update/adopt: equal → applied; absent → ConflictError (deleted outside git; re-plan);
  different → updated once more when the outcome was unknown, else the answered error stands.
- delete: absent → applied; present → deleted once more when the outcome was unknown, else the
  answered error stands.

A 1002 answered to a create or a delete is read back too, unless its message names the
App-Key (:func:`generic_1002`): 1002 is RongCloud's generic parameter error, and it may well be
what a duplicate ``userId`` or a missing bot answers. The read settles it as above (the bot is
there as declared: adopted; a delete finds nothing: already absent); otherwise the 1002 stands.

"Equal" compares canonical forms (:func:`canonical_matcher`): a masked live apiKey matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioner.errors import AmbiguousWriteError, ApiError, ConflictError, ProvisionerError
from provisioner.plan import Change
from provisioner.plan.canonical import SERVER_FIELDS, canonical_live
from provisioner.rongcloud.models import BotPayload
from provisioner.rongcloud.responses import PARAMETER_CODE, names_app_key

NO_EFFECT_CODES = frozenset({1002, 1004, 1008})
"""RongCloud's documented bot-API failures: the call was refused and did nothing."""
NO_EFFECT_STATUSES = frozenset({401, 403, 429})
MAX_WRITES_PER_CHANGE = 2
"""The first call, plus at most one more after reading the bot back."""
GET = "/v3/bot/get.json"


class BotApi(Protocol):
    """The part of :class:`provisioner.rongcloud.client.RongCloudClient` that apply uses."""

    def create_bot(self, payload: BotPayload) -> object: ...

    def update_bot(self, payload: BotPayload) -> object: ...

    def delete_bot(self, user_id: str) -> object: ...

    def get_bots(self, user_ids: Sequence[str]) -> list[BotPayload]: ...

    def delete_integration(self, user_id: str, kind: str) -> object: ...


Matcher = Callable[[Change, BotPayload], bool]
"""``matcher(change, live)``: True when the live bot already is ``change.after``."""


def without_a_call(change: Change) -> str | None:
    """Why ``change`` is recorded without any call (``None``: it makes one): an adoption of a
    bot already as declared, an update that changes only ``protect``."""
    if change.action == "adopt" and not change.fields:
        return "already as declared; recorded without a call"
    if change.action == "update" and all(diff.path == "protect" for diff in change.fields):
        return "only protect changed; recorded without a call"
    return None


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


def may_have_acted(error: ApiError) -> bool:
    """False for the documented refusals (the call did nothing), True for anything else."""
    return error.code not in NO_EFFECT_CODES and error.http_status not in NO_EFFECT_STATUSES


def generic_1002(error: ApiError) -> bool:
    """A 1002 whose message does not name the App-Key, not a refusal of the credentials
    (HTTP 401/403): RongCloud's generic parameter error, settled by reading back on a create
    or a delete."""
    return (
        error.code == PARAMETER_CODE
        and error.http_status not in (401, 403)
        and not names_app_key(error.error_message)
    )


@dataclass(frozen=True)
class Settled:
    """A change that took effect: what the server returned to record, and how it was settled
    when not by the plain call."""

    server: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass
class _Attempt:
    """What the last write of one change told: its action, why it is uncertain, a note."""

    action: str
    cause: ProvisionerError | None = None
    note: str | None = None

    @property
    def answered(self) -> bool:
        """The server answered with an error (not: the outcome is unknown)."""
        return isinstance(self.cause, ApiError)


class ChangeRunner:
    """Runs one change to a settled outcome (returns) or a failure (raises ProvisionerError)."""

    def __init__(self, api: BotApi, matcher: Matcher) -> None:
        self.api = api
        self.matcher = matcher

    def run(self, change: Change, payload: BotPayload | None) -> Settled:
        if change.action == "delete":
            return self.delete(change.user_id)
        if payload is None:
            raise ValueError(f"no desired bot for {change.action} of {change.user_id}")
        skipped = without_a_call(change)
        if skipped is not None:
            return Settled(note=skipped)
        first = "create" if change.action == "create" else "update"
        return self.write(first, change, payload)

    def write(self, first: str, change: Change, payload: BotPayload) -> Settled:
        """Create or update, settling any uncertain outcome by reading back."""
        attempt = _Attempt(first)
        for _ in range(MAX_WRITES_PER_CHANGE):
            try:
                answer = self._call(attempt.action, payload)
                return Settled(server_fields(answer), attempt.note)
            except AmbiguousWriteError as exc:
                attempt.cause = exc
                attempt.note = f"{attempt.action} outcome unknown; settled by reading back"
            except ApiError as exc:
                if not may_have_acted(exc) and not (
                    attempt.action == "create" and generic_1002(exc)
                ):
                    raise
                attempt.cause = exc
            live = self.read_back(payload.userId, attempt.action, attempt.cause)
            if live is not None and self.matcher(change, live):
                return Settled(server_fields(live), _matched_note(first, attempt))
            _raise_if_unsettled(first, change.user_id, attempt, live)
            attempt.action = "create" if live is None else "update"
        assert attempt.cause is not None
        raise attempt.cause

    def delete(self, user_id: str) -> Settled:
        note: str | None = None
        cause: ProvisionerError | None = None
        for _ in range(MAX_WRITES_PER_CHANGE):
            try:
                self.api.delete_bot(user_id)
                return Settled(note=note)
            except AmbiguousWriteError as exc:
                cause = exc
                note = "delete outcome unknown; settled by reading back"
            except ApiError as exc:
                if not may_have_acted(exc) and not generic_1002(exc):
                    raise
                if self.read_back(user_id, "delete", exc) is not None:
                    raise
                return Settled(note="already absent on the server")
            if self.read_back(user_id, "delete", cause) is None:
                return Settled(note=note)
        assert cause is not None
        raise cause

    def read_back(
        self, user_id: str, action: str, cause: ProvisionerError | None
    ) -> BotPayload | None:
        reason = f" ({cause.message})" if cause is not None else ""
        try:
            found = self.api.get_bots([user_id])
        except ProvisionerError as exc:
            raise AmbiguousWriteError(
                f"{action} of {user_id} may or may not have been applied{reason}, "
                f"and reading it back failed: {exc.message}",
                endpoint=getattr(cause, "endpoint", GET),
                hint="re-run `provisioner apply`: it reads the bot back and converges",
            ) from exc
        return next((bot for bot in found if bot.userId == user_id), None)

    def _call(self, action: str, payload: BotPayload) -> object:
        if action == "create":
            return self.api.create_bot(payload)
        return self.api.update_bot(payload)


def _matched_note(first: str, attempt: _Attempt) -> str | None:
    """How a change that the server already holds as declared was settled."""
    if attempt.answered and first == "create":
        return "already existed on the server; adopted"
    if attempt.answered:
        return f"{first} answered an error, but the server holds the bot as declared"
    return attempt.note


def _raise_if_unsettled(
    first: str, user_id: str, attempt: _Attempt, live: BotPayload | None
) -> None:
    """After a read back that does not match: raise unless one more write may settle it."""
    endpoint = getattr(attempt.cause, "endpoint", GET)
    if first == "create" and live is not None:
        raise ConflictError(
            f"bot {user_id} already exists on the server with another spec; the plan was to"
            " create it, and will not overwrite a bot it did not plan for",
            endpoint=endpoint,
            hint="it was made outside this state (by hand, another team, or a lost state):"
            " run `provisioner plan` with refresh to see it, then declare it as it is to adopt"
            " it, or give your bot another userId",
        ) from attempt.cause
    if first == "update" and live is None:
        raise ConflictError(
            f"bot {user_id} is not on the server (deleted outside git?)",
            endpoint=endpoint,
            hint="run `provisioner plan` to see the drift, then apply the new plan",
        ) from attempt.cause
    if attempt.answered:
        assert attempt.cause is not None
        raise attempt.cause
