"""Read-back after an app's writes: did the server keep what it answered success for?

RongCloud does not document whether ``/v3/bot/update.json`` replaces a bot or patches it.
If it patches, a field, metadata key or integration the manifest no longer sets is never
cleared, and an apply that trusts the answer reports success while every later plan shows the
same drift. So once an app's calls are done, every bot a create, adopt or update wrote is
read back (``/v3/bot/get.json``, at most 20 ids a call). A bot the server holds exactly as the
body sent (its timestamps aside) is as declared; any other is compared in canonical form with
the declared spec (:mod:`provisioner.plan.canonical`: defaults filled, integrations by type,
secrets by salted fingerprint), which costs several times the read itself:

- as declared: nothing to say;
- an integration the server kept although the manifest dropped it: removed with
  ``/v3/bot/integration/delete.json`` (the narrower call RongCloud's Java SDK has), and the
  bot read back again;
- anything else the server holds otherwise (or left over after that): the change fails with
  :class:`~provisioner.errors.NotConvergedError` ("the server kept `objectNames: [RC:TxtMsg]`
  after the update", exit 4), and the state records what the server holds, so the next plan
  shows exactly what remains.

An ``auth.apiKey`` the server returns masked, or not at all, cannot be compared: it is left
out of the comparison, and the app's first verified change says so once. A read that fails
leaves the changes applied, each noted as not verified. ``PROVISIONER_READ_BACK=off`` skips
the read-back (to measure what it costs).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from provisioner.apply.recorder import Recorder
from provisioner.apply.results import ChangeResult
from provisioner.apply.settle import BotApi, server_fields, without_a_call
from provisioner.errors import ConfigError, NotConvergedError, ProvisionerError
from provisioner.plan import Change, FieldDiff, diff_specs
from provisioner.plan.canonical import SERVER_FIELDS, canonical_live, is_masked
from provisioner.rongcloud.client import GET, INTEGRATION_DELETE
from provisioner.rongcloud.models import BotPayload
from provisioner.secrets import is_sensitive_value

READ_BACK_ENV = "PROVISIONER_READ_BACK"
"""``off`` (or ``0``, ``false``, ``no``) skips the read-back; unset, or ``on``, reads back."""
_OFF = ("off", "0", "false", "no")
_ON = ("", "on", "1", "true", "yes")
NOT_CONVERGED_HINT = (
    "the server keeps what an update leaves out (`provisioner probe` tells how it updates):"
    " declare the field with an empty value (e.g. `objectNames: []`) so that the update sends"
    " it, or change it in the RongCloud console; the state records what the server holds, so"
    " the next plan shows exactly what remains"
)
_HIDDEN = {"absent": "does not return it", "masked": "returns it masked"}
_SENT_FIELDS = tuple(name for name in BotPayload.model_fields if name not in SERVER_FIELDS)
Report = Callable[[ChangeResult], None]


def read_back_enabled(env: Mapping[str, str]) -> bool:
    """Whether apply reads written bots back (:data:`READ_BACK_ENV`; ConfigError otherwise)."""
    raw = env.get(READ_BACK_ENV, "").strip().lower()
    if raw in _OFF or raw in _ON:
        return raw not in _OFF
    raise ConfigError(
        f"environment variable {READ_BACK_ENV} must be on or off, got {raw!r}",
        hint="unset it to read written bots back (the default)",
    )


class ReadBack:
    """Reads an app's written bots back and settles each change (see the module docstring)."""

    def __init__(self, api: BotApi, salt: str, sent: Mapping[str, BotPayload]) -> None:
        self.api = api
        self.salt = salt
        self.sent = sent
        """userId → the body the create or update sent (secrets resolved)."""

    def verify(
        self,
        changes: Sequence[Change],
        results: Sequence[ChangeResult],
        recorder: Recorder,
        skip: Collection[str],
        report: Report,
    ) -> tuple[ChangeResult, ...]:
        """``results`` with each written bot's change settled against what the server holds;
        ``report`` is called with every result that changed. ``skip``: userIds recorded
        without a call."""
        written = [
            index
            for index, (change, result) in enumerate(zip(changes, results, strict=True))
            if result.outcome == "applied"
            and change.action != "delete"
            and change.after is not None
            and change.user_id not in skip
            and without_a_call(change) is None
        ]
        out = list(results)
        if not written:
            return tuple(out)
        try:
            live = self._read([changes[index].user_id for index in written])
        except ProvisionerError as exc:
            for index in written:
                out[index] = _noted(out[index], f"not verified: reading back failed: {exc.message}")
                report(out[index])
            return tuple(out)
        hidden: set[str] = set()
        for index in written:
            settled = self._settle(changes[index], out[index], live, recorder, hidden)
            if settled is not out[index]:
                out[index] = settled
                report(settled)
        if hidden:
            index = written[0]
            how = " or ".join(_HIDDEN[reason] for reason in sorted(hidden))
            note = f"auth.apiKey not compared: the server {how}"
            out[index] = _noted(out[index], note)
        return tuple(out)

    def _read(self, user_ids: Sequence[str]) -> dict[str, BotPayload]:
        return {bot.userId: bot for bot in self.api.get_bots(user_ids)}

    def _settle(
        self,
        change: Change,
        result: ChangeResult,
        live: Mapping[str, BotPayload],
        recorder: Recorder,
        hidden: set[str],
    ) -> ChangeResult:
        """The change's result once its bot is compared (and maybe converged by the narrower
        call); a change that did not converge is recorded as the server holds it."""
        bot = live.get(change.user_id)
        if bot is None:
            return self._failed(change, result, "the server does not hold the bot", recorder)
        if _as_sent(bot, self.sent.get(change.user_id)):
            return result
        held, diffs = self._compare(change, bot, hidden)
        if not diffs:
            return result
        kept = [_integration_type(diff) for diff in diffs if _kept_integration(diff)]
        removed, failures = self._remove_integrations(change.user_id, kept)
        if removed:
            try:
                bot = self._read([change.user_id]).get(change.user_id) or bot
            except ProvisionerError as exc:
                failures.append(f"reading it back again failed: {exc.message}")
            held, diffs = self._compare(change, bot, hidden)
            if not diffs:
                note = (
                    f"the server kept integration {', '.join(removed)} after the"
                    f" {_verb(change)}; removed with {INTEGRATION_DELETE}"
                )
                return _noted(result, note)
        what = "; ".join([*(_describe(diff, change) for diff in diffs), *failures])
        recorded = dataclasses.replace(change, after=held)
        return self._failed(change, result, what, recorder, recorded, bot)

    def _compare(
        self, change: Change, bot: BotPayload, hidden: set[str]
    ) -> tuple[dict[str, Any], tuple[FieldDiff, ...]]:
        """The canonical form of ``bot`` (an apiKey it masks or leaves out taken as declared,
        and why added to ``hidden``) and its differences from the declared spec."""
        assert change.after is not None
        held = canonical_live(bot, self.salt, change.after)
        declared = {item["type"]: item for item in change.after.get("integrations", [])}
        for item in held.get("integrations", []):
            wanted = declared.get(item["type"], {})
            if "auth" not in wanted:
                continue
            if "auth" not in item:
                hidden.add("absent")
                item["auth"] = wanted["auth"]
            elif any(
                live.type == item["type"] and live.auth is not None and is_masked(live.auth.apiKey)
                for live in bot.integrations or ()
            ):
                hidden.add("masked")
        return held, diff_specs(change.after, held)

    def _remove_integrations(
        self, user_id: str, kinds: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """The integration types removed with the narrower call, and what failed."""
        removed: list[str] = []
        failures: list[str] = []
        for kind in kinds:
            try:
                self.api.delete_integration(user_id, kind)
            except ProvisionerError as exc:
                failures.append(f"{INTEGRATION_DELETE} for {kind} failed: {exc.message}")
            else:
                removed.append(kind)
        return removed, failures

    def _failed(
        self,
        change: Change,
        result: ChangeResult,
        what: str,
        recorder: Recorder,
        recorded: Change | None = None,
        bot: BotPayload | None = None,
    ) -> ChangeResult:
        """The change failed as not converged; the state records what the server holds
        (``recorded``; no bot at all when ``bot`` is None)."""
        error = NotConvergedError(
            f"not converged: {what} after the {_verb(change)}",
            endpoint=GET,
            hint=NOT_CONVERGED_HINT,
        )
        gone = dataclasses.replace(change, action="delete", after=None)
        try:
            recorder.record(recorded or gone, server_fields(bot))
        except ProvisionerError as exc:
            error = NotConvergedError(
                f"{error.message}; recording what the server holds failed: {exc.message}",
                endpoint=GET,
                hint=NOT_CONVERGED_HINT,
            )
        return dataclasses.replace(result, outcome="failed", error=error)


def _as_sent(bot: BotPayload, sent: BotPayload | None) -> bool:
    """The server holds exactly the body sent (its timestamps aside), so the bot is as
    declared: the body is the declared spec with its references resolved."""
    return sent is not None and all(
        getattr(bot, name) == getattr(sent, name) for name in _SENT_FIELDS
    )


def _noted(result: ChangeResult, note: str) -> ChangeResult:
    return dataclasses.replace(result, note=f"{result.note}; {note}" if result.note else note)


def _verb(change: Change) -> str:
    return "create" if change.action == "create" else "update"


def _kept_integration(diff: FieldDiff) -> bool:
    """A whole integration the server holds and the declared spec does not."""
    return diff.path.startswith("integrations[") and diff.path.endswith("]") and diff.old is None


def _integration_type(diff: FieldDiff) -> str:
    return diff.path.removeprefix("integrations[").removesuffix("]")


def _describe(diff: FieldDiff, change: Change) -> str:
    """What the server holds for one differing field, never a secret."""
    if diff.sensitive:
        return f"the server holds another value for `{diff.path}`"
    if diff.new in (None, [], {}, ""):
        return f"the server dropped `{diff.path}: {_shown(diff.old)}`"
    if diff.old in (None, [], {}, ""):
        return f"the server kept `{diff.path}: {_shown(diff.new)}`"
    return f"the server holds `{diff.path}: {_shown(diff.new)}` (declared: {_shown(diff.old)})"


def _shown(value: Any) -> str:
    """``[RC:TxtMsg]``, ``text``, or compact JSON; a secret (its fingerprint too) is only
    ever ``(sensitive)``."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(_masked(value), ensure_ascii=False, separators=(", ", ": "))


def _masked(value: Any) -> Any:
    if is_sensitive_value(value):
        return "(sensitive)"
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value
