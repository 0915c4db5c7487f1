"""Fakes for the apply tests (no network): a stateful bot API and an in-memory recorder.

The fake keeps bots in a dict and can be told, per (method, userId), to misbehave once:
drop the connection after committing, before committing, commit something else, or answer
with an API error. Every call is logged, so tests can assert "never a blind second create".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from provisioner.apply.executor import AppJob, CallPool
from provisioner.apply.results import ApplyResult
from provisioner.apply.settle import ChangeRunner, canonical_matcher
from provisioner.errors import AmbiguousWriteError, ApiError, StateError, TransportError
from provisioner.models import Bot
from provisioner.plan import Change, FieldDiff
from provisioner.plan.canonical import api_payload, canonical_spec
from provisioner.rongcloud.models import BotPayload

SECRET = "dify-key-0123456789"
ENV = {"DIFY_KEY": SECRET}
SALT = "5a17" * 16

Fault = str | ApiError | Callable[[], None]


def api_error(code: int, status: int = 400, endpoint: str = "/v3/bot/create.json") -> ApiError:
    return ApiError(
        f"RongCloud refused the call ({code})",
        endpoint=endpoint,
        http_status=status,
        code=code,
        error_message=f"error {code}",
        request_id=f"req-{code}",
    )


def bot(user_id: str, name: str = "Bot") -> Bot:
    return Bot.model_validate(
        {
            "userId": user_id,
            "name": name,
            "type": "bot",
            "profileUrl": "https://example.com/p.png",
            "integrations": [
                {
                    "type": "dify_chat",
                    "callbackUrl": "https://api.dify.ai/v1",
                    "objectNames": ["RC:TxtMsg"],
                    "auth": {"apiKey": "${DIFY_KEY}"},
                }
            ],
        }
    )


def payload(user_id: str, name: str = "Bot", key: str = SECRET) -> BotPayload:
    """The API body of ``bot(user_id, name)`` with the Dify key ``key``."""
    return api_payload(bot(user_id, name), {"DIFY_KEY": key})


class FakeApi:
    """A stateful, thread-safe fake of RongCloudClient's bot calls."""

    def __init__(
        self,
        *bots: BotPayload,
        mask_keys: bool = False,
        latency: float = 0.0,
        codes: tuple[int, int] = (1010, 1404),
    ) -> None:
        self.bots = {bot.userId: bot for bot in bots}
        self.duplicate_code, self.unknown_code = codes
        """The codes for "userId exists" and "no such bot" (the emulator's invented ones by
        default: RongCloud documents neither)."""
        self.calls: list[tuple[str, str]] = []
        self.faults: dict[tuple[str, str], list[Fault]] = {}
        self.mask_keys = mask_keys
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.timeline: list[tuple[str, str, str]] = []

    def fail(self, method: str, user_id: str, *faults: Fault) -> None:
        self.faults.setdefault((method, user_id), []).extend(faults)

    def _enter(self, method: str, user_id: str) -> Fault | None:
        with self.lock:
            self.calls.append((method, user_id))
            self.timeline.append(("start", method, user_id))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            queue = self.faults.get((method, user_id))
            return queue.pop(0) if queue else None

    def _leave(self, method: str, user_id: str) -> None:
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
            self.timeline.append(("end", method, user_id))

    def _write(self, method: str, user_id: str, commit: Callable[[], Any]) -> Any:
        fault = self._enter(method, user_id)
        try:
            if callable(fault) and not isinstance(fault, ApiError):
                fault()
                fault = None
            if isinstance(fault, ApiError):
                raise fault
            if fault == "drop_before_commit":
                raise AmbiguousWriteError("connection dropped", endpoint=f"/v3/bot/{method}.json")
            if fault == "commit_other":
                self.bots[user_id] = payload(user_id, name="something else")
                raise AmbiguousWriteError("connection dropped", endpoint=f"/v3/bot/{method}.json")
            answer = commit()
            if fault == "drop_after_commit":
                raise AmbiguousWriteError("connection dropped", endpoint=f"/v3/bot/{method}.json")
            return answer
        finally:
            self._leave(method, user_id)

    def create_bot(self, body: BotPayload) -> BotPayload:
        def commit() -> BotPayload:
            if body.userId in self.bots:
                raise api_error(self.duplicate_code)
            self.bots[body.userId] = body.model_copy(update={"createdAt": 1700000000000})
            return self.bots[body.userId]

        return self._write("create", body.userId, commit)

    def update_bot(self, body: BotPayload) -> BotPayload:
        def commit() -> BotPayload:
            if body.userId not in self.bots:
                raise api_error(self.unknown_code, 404, "/v3/bot/update.json")
            self.bots[body.userId] = body
            return body

        return self._write("update", body.userId, commit)

    def delete_bot(self, user_id: str) -> None:
        def commit() -> None:
            if user_id not in self.bots:
                raise api_error(self.unknown_code, 404, "/v3/bot/delete.json")
            del self.bots[user_id]

        self._write("delete", user_id, commit)

    def delete_integration(self, user_id: str, kind: str) -> None:
        def commit() -> None:
            if user_id not in self.bots:
                raise api_error(self.unknown_code, 404, "/v3/bot/integration/delete.json")
            bot = self.bots[user_id]
            kept = [item for item in bot.integrations or () if item.type != kind]
            self.bots[user_id] = bot.model_copy(update={"integrations": kept})

        self._write("delete_integration", user_id, commit)

    def get_bots(self, user_ids: Sequence[str]) -> list[BotPayload]:
        fault = self._enter("get", ",".join(user_ids))
        try:
            if isinstance(fault, ApiError | TransportError):
                raise fault
            found = [self.bots[uid] for uid in user_ids if uid in self.bots]
            return [self._masked(bot) for bot in found] if self.mask_keys else found
        finally:
            self._leave("get", ",".join(user_ids))

    @staticmethod
    def _masked(bot: BotPayload) -> BotPayload:
        data = bot.model_dump(exclude_none=True)
        for integration in data.get("integrations", []):
            if "auth" in integration:
                integration["auth"]["apiKey"] = "app-****" + integration["auth"]["apiKey"][-4:]
        return BotPayload.model_validate(data)

    def count(self, method: str, user_id: str) -> int:
        return self.calls.count((method, user_id))


class FakeRecorder:
    """Records changes in memory; can be told to fail on a given userId, or to report a
    failure to persist (``pending``) once something was recorded."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.recorded: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()
        self.pending: StateError | None = None
        self.fail_to_persist_after: int | None = None

    def record(self, change: Change, server: Mapping[str, Any]) -> None:
        if change.user_id == self.fail_on:
            raise StateError("could not write the state", hint="check the disk")
        with self.lock:
            self.recorded.append((change.action, change.user_id, dict(server)))
            if self.fail_to_persist_after == len(self.recorded):
                self.pending = StateError("the push was rejected", hint="run state push")

    def pending_error(self) -> StateError | None:
        return self.pending


def change(action: str, user_id: str, *, fields: tuple[FieldDiff, ...] = ()) -> Change:
    """A planned change whose ``after`` is the canonical form of ``bot(user_id)``."""
    spec = None if action == "delete" else canonical_spec(bot(user_id), ENV, SALT)
    before = (
        None if action in ("create", "adopt") else canonical_spec(bot(user_id, "Old"), ENV, SALT)
    )
    return Change(action, user_id, f"bots/t/{user_id}.yaml", before, spec, fields)  # type: ignore[arg-type]


NAME_DIFF = (FieldDiff("name", "Old", "Bot"),)


def job(
    api: FakeApi, changes: Sequence[Change], recorder: FakeRecorder | None = None, app: str = "t"
) -> AppJob:
    payloads = {c.user_id: payload(c.user_id) for c in changes if c.action != "delete"}
    runner = ChangeRunner(api, canonical_matcher(SALT))
    return AppJob(app, "plan-1", changes, payloads, runner, recorder or FakeRecorder())


def run(
    api: FakeApi,
    changes: Sequence[Change],
    pool: CallPool,
    recorder: FakeRecorder | None = None,
) -> ApplyResult:
    """Apply ``changes`` of app ``t`` through ``pool`` from this (the main) thread."""
    return pool.apply(job(api, changes, recorder))


def outcomes(result: ApplyResult) -> dict[str, str]:
    return {r.user_id: r.outcome for r in result.results}
