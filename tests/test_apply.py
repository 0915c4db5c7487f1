"""The apply engine against a small stateful fake of the bot API (no network).

The fake keeps bots in a dict and can be told, per (method, userId), to misbehave once:
drop the connection after committing, before committing, commit something else, or answer
with an API error. Every call is logged, so tests can assert "never a blind second create".
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from provisioner.apply import (
    RECORDING_WORKERS,
    ApplyResult,
    CallPool,
    ChangeResult,
    apply_changes,
    canonical_matcher,
    error_data,
    phases,
)
from provisioner.canonical import api_payload, canonical_spec
from provisioner.errors import AmbiguousWriteError, ApiError, StateError, TransportError
from provisioner.models import Bot
from provisioner.plan import Change, FieldDiff
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

    def __init__(self, *bots: BotPayload, mask_keys: bool = False, latency: float = 0.0) -> None:
        self.bots = {bot.userId: bot for bot in bots}
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
                raise api_error(1010)
            self.bots[body.userId] = body.model_copy(update={"createdAt": 1700000000000})
            return self.bots[body.userId]

        return self._write("create", body.userId, commit)

    def update_bot(self, body: BotPayload) -> BotPayload:
        def commit() -> BotPayload:
            if body.userId not in self.bots:
                raise api_error(1404, 404, "/v3/bot/update.json")
            self.bots[body.userId] = body
            return body

        return self._write("update", body.userId, commit)

    def delete_bot(self, user_id: str) -> None:
        def commit() -> None:
            if user_id not in self.bots:
                raise api_error(1404, 404, "/v3/bot/delete.json")
            del self.bots[user_id]

        self._write("delete", user_id, commit)

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
    """Records changes in memory; can be told to fail on a given userId."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.recorded: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def record(self, change: Change, server: Mapping[str, Any]) -> None:
        if change.user_id == self.fail_on:
            raise StateError("could not write the state", hint="check the disk")
        with self.lock:
            self.recorded.append((change.action, change.user_id, dict(server)))


def change(action: str, user_id: str, *, fields: tuple[FieldDiff, ...] = ()) -> Change:
    """A planned change whose ``after`` is the canonical form of ``bot(user_id)``."""
    spec = None if action == "delete" else canonical_spec(bot(user_id), ENV, SALT)
    before = (
        None if action in ("create", "adopt") else canonical_spec(bot(user_id, "Old"), ENV, SALT)
    )
    return Change(action, user_id, f"bots/t/{user_id}.yaml", before, spec, fields)  # type: ignore[arg-type]


NAME_DIFF = (FieldDiff("name", "Old", "Bot"),)


@pytest.fixture
def pool() -> Any:
    with CallPool(4) as executor:
        yield executor


def run(
    api: FakeApi,
    changes: Sequence[Change],
    pool: CallPool,
    recorder: FakeRecorder | None = None,
    **kwargs: Any,
) -> ApplyResult:
    payloads = {c.user_id: payload(c.user_id) for c in changes if c.action != "delete"}
    return apply_changes(
        "t",
        "plan-1",
        changes,
        payloads,
        api,
        recorder or FakeRecorder(),
        pool,
        matcher=canonical_matcher(SALT),
        **kwargs,
    )


def outcomes(result: ApplyResult) -> dict[str, str]:
    return {r.user_id: r.outcome for r in result.results}


# --- the plain path -------------------------------------------------------------------------


def test_each_action_is_called_and_recorded(pool: CallPool) -> None:
    api = FakeApi(payload("old"), payload("changed", name="Old"), payload("found", name="Old"))
    recorder = FakeRecorder()
    changes = [
        change("delete", "old"),
        change("create", "new"),
        change("adopt", "found", fields=NAME_DIFF),
        change("update", "changed", fields=NAME_DIFF),
    ]
    result = run(api, changes, pool, recorder)

    assert result.ok and result.counts == {"applied": 4, "failed": 0, "not_attempted": 0}
    assert sorted(api.calls) == [
        ("create", "new"),
        ("delete", "old"),
        ("update", "changed"),
        ("update", "found"),
    ]
    assert set(api.bots) == {"new", "changed", "found"}
    assert api.bots["changed"].name == "Bot"
    assert sorted((a, u) for a, u, _ in recorder.recorded) == [
        ("adopt", "found"),
        ("create", "new"),
        ("delete", "old"),
        ("update", "changed"),
    ]
    assert ("create", "new", {"createdAt": 1700000000000}) in recorder.recorded


def test_deletes_complete_before_any_other_call_starts(pool: CallPool) -> None:
    api = FakeApi(payload("a"), payload("b"), latency=0.02)
    changes = [change("delete", "a"), change("delete", "b")]
    changes += [change("create", f"c{i}") for i in range(3)]
    run(api, changes, pool)

    last_delete_end = max(
        i for i, (kind, method, _) in enumerate(api.timeline) if (kind, method) == ("end", "delete")
    )
    first_create_start = min(
        i
        for i, (kind, method, _) in enumerate(api.timeline)
        if (kind, method) == ("start", "create")
    )
    assert last_delete_end < first_create_start


def test_calls_in_flight_never_exceed_the_pool_size() -> None:
    api = FakeApi(latency=0.02)
    with CallPool(3) as small_pool:
        result = run(api, [change("create", f"b{i}") for i in range(10)], small_pool)
    assert result.ok
    assert 2 <= api.max_in_flight <= 3


def test_a_call_slot_is_free_while_the_last_answer_is_recorded() -> None:
    api = FakeApi()
    second_call = threading.Event()
    api.fail("create", "b", second_call.set)

    class SlowRecorder(FakeRecorder):
        def record(self, change: Change, server: Mapping[str, Any]) -> None:
            if change.user_id == "a":
                assert second_call.wait(10), "the call of b waited for the state write of a"
            super().record(change, server)

    recorder = SlowRecorder()
    reported: list[tuple[str, list[str]]] = []

    def on_result(app: str, result: ChangeResult) -> None:
        reported.append((result.user_id, [user_id for _, user_id, _ in recorder.recorded]))

    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "ab"], one, recorder, on_result=on_result)
    assert result.ok
    # each change counts as applied only once its state write is done
    assert reported == [("a", ["a"]), ("b", ["a", "b"])]


def test_state_writes_run_on_at_most_two_recording_threads() -> None:
    class CountingRecorder(FakeRecorder):
        def __init__(self) -> None:
            super().__init__()
            self.writing = 0
            self.most_writing = 0

        def record(self, change: Change, server: Mapping[str, Any]) -> None:
            with self.lock:
                self.writing += 1
                self.most_writing = max(self.most_writing, self.writing)
            time.sleep(0.02)
            with self.lock:
                self.writing -= 1
            super().record(change, server)

    recorder = CountingRecorder()
    with CallPool(8) as pool:
        result = run(FakeApi(), [change("create", f"b{i}") for i in range(16)], pool, recorder)
    assert result.ok
    assert recorder.most_writing == RECORDING_WORKERS == 2


def test_adopt_without_differences_is_recorded_without_a_call(pool: CallPool) -> None:
    api = FakeApi(payload("found"))
    recorder = FakeRecorder()
    result = run(api, [change("adopt", "found")], pool, recorder)
    assert result.ok and api.calls == []
    assert recorder.recorded == [("adopt", "found", {})]
    assert result.results[0].note == "already as declared; recorded without a call"


def test_an_empty_plan_does_nothing(pool: CallPool) -> None:
    result = run(FakeApi(), [], pool)
    assert result.ok and result.results == () and result.counts["applied"] == 0


# --- ambiguity is settled by reading back ---------------------------------------------------


def test_create_dropped_after_commit_is_settled_without_a_second_create(
    pool: CallPool,
) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_after_commit")
    recorder = FakeRecorder()
    result = run(api, [change("create", "a")], pool, recorder)

    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]
    assert result.results[0].note == "create outcome unknown; settled by reading back"
    assert recorder.recorded == [("create", "a", {"createdAt": 1700000000000})]


def test_create_dropped_before_commit_is_created_once_more(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a"), ("create", "a")]


def test_create_that_left_a_different_bot_is_updated(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "commit_other")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a"), ("update", "a")]
    assert api.bots["a"].name == "Bot"


def test_a_second_ambiguous_create_is_never_followed_by_a_third(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit", "drop_before_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.counts == {"applied": 0, "failed": 1, "not_attempted": 0}
    assert api.count("create", "a") == 2
    assert isinstance(result.results[0].error, AmbiguousWriteError)


def test_a_second_ambiguous_create_that_committed_is_applied(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_before_commit", "drop_after_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.count("create", "a") == 2 and "a" in api.bots


def test_create_of_an_existing_equal_bot_adopts_it(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]
    assert result.results[0].note == "already existed on the server; adopted"


def test_create_of_an_existing_different_bot_updates_it(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Hand made"))
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a"), ("update", "a")]
    assert api.bots["a"].name == "Bot"


def test_a_masked_api_key_counts_as_matching(pool: CallPool) -> None:
    api = FakeApi(mask_keys=True)
    api.fail("create", "a", "drop_after_commit")
    result = run(api, [change("create", "a")], pool)
    assert result.ok
    assert api.calls == [("create", "a"), ("get", "a")]


def test_update_dropped_after_commit_is_settled(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", "drop_after_commit")
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.ok
    assert api.calls == [("update", "a"), ("get", "a")]


def test_update_dropped_before_commit_is_sent_once_more(pool: CallPool) -> None:
    api = FakeApi(payload("a", name="Old"))
    api.fail("update", "a", "drop_before_commit")
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.ok
    assert api.calls == [("update", "a"), ("get", "a"), ("update", "a")]


def test_update_of_a_bot_deleted_outside_git_fails_with_a_hint(pool: CallPool) -> None:
    api = FakeApi()
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    error = result.results[0].error
    assert result.results[0].outcome == "failed" and isinstance(error, ApiError)
    assert error.message == "bot a is not on the server (deleted outside git?)"
    assert error.hint == "run `provisioner plan` to see the drift, then apply the new plan"
    assert error.code == 1404 and error.request_id == "req-1404"
    assert api.count("create", "a") == 0


def test_ambiguous_update_of_a_vanished_bot_fails_without_creating(
    pool: CallPool,
) -> None:
    api = FakeApi()
    api.fail("update", "a", "drop_before_commit")
    result = run(api, [change("update", "a", fields=NAME_DIFF)], pool)
    assert result.results[0].outcome == "failed"
    assert isinstance(result.results[0].error, StateError)
    assert api.calls == [("update", "a"), ("get", "a")]


def test_delete_of_an_absent_bot_counts_as_applied(pool: CallPool) -> None:
    recorder = FakeRecorder()
    result = run(FakeApi(), [change("delete", "gone")], pool, recorder)
    assert result.ok
    assert result.results[0].note == "already absent on the server"
    assert recorder.recorded == [("delete", "gone", {})]


def test_ambiguous_delete_is_settled_by_reading_back(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    api.fail("delete", "a", "drop_after_commit")
    result = run(api, [change("delete", "a")], pool)
    assert result.ok and api.calls == [("delete", "a"), ("get", "a")]


def test_ambiguous_delete_not_committed_is_sent_once_more(pool: CallPool) -> None:
    api = FakeApi(payload("a"))
    api.fail("delete", "a", "drop_before_commit")
    result = run(api, [change("delete", "a")], pool)
    assert result.ok and api.calls == [("delete", "a"), ("get", "a"), ("delete", "a")]
    assert api.bots == {}


def test_a_failed_read_back_leaves_the_outcome_unknown(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "a", "drop_after_commit")
    api.fail("get", "a", TransportError("timed out", endpoint="/v3/bot/get.json"))
    result = run(api, [change("create", "a")], pool)
    error = result.results[0].error
    assert isinstance(error, AmbiguousWriteError)
    assert error.message == (
        "create of a may or may not have been applied (connection dropped), "
        "and reading it back failed: timed out"
    )
    assert error.hint == "re-run `provisioner apply`: it reads the bot back and converges"
    assert api.count("create", "a") == 1


# --- failures, halts and interruption -------------------------------------------------------


def test_a_failed_call_does_not_stop_the_others(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "b", api_error(1502))
    recorder = FakeRecorder()
    result = run(api, [change("create", n) for n in "abc"], pool, recorder)

    assert outcomes(result) == {"a": "applied", "b": "failed", "c": "applied"}
    assert result.counts == {"applied": 2, "failed": 1, "not_attempted": 0}
    assert not result.ok
    assert sorted(u for _, u, _ in recorder.recorded) == ["a", "c"]
    assert result.results[1].data == {
        "action": "create",
        "userId": "b",
        "outcome": "failed",
        "error": {
            "type": "ApiError",
            "message": "RongCloud refused the call (1502)",
            "endpoint": "/v3/bot/create.json",
            "httpStatus": 400,
            "code": 1502,
            "errorMessage": "error 1502",
            "requestId": "req-1502",
        },
    }


def test_a_state_write_failure_stops_new_calls() -> None:
    api = FakeApi(payload("x"))
    changes = [change("delete", "x")] + [change("create", n) for n in "abc"]
    with CallPool(1) as one:
        result = run(api, changes, one, FakeRecorder(fail_on="x"))
    assert outcomes(result) == {
        "x": "failed",
        "a": "not_attempted",
        "b": "not_attempted",
        "c": "not_attempted",
    }
    assert api.calls == [("delete", "x")]
    assert not result.interrupted


def test_refused_credentials_stop_new_calls() -> None:
    api = FakeApi()
    api.fail("create", "a", api_error(1004, 401))
    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "abc"], one)
    assert outcomes(result) == {"a": "failed", "b": "not_attempted", "c": "not_attempted"}


def test_a_set_stop_flag_leaves_everything_not_attempted(pool: CallPool) -> None:
    stop = threading.Event()
    stop.set()
    api = FakeApi()
    result = run(api, [change("create", "a")], pool, stop=stop)
    assert api.calls == [] and result.interrupted
    assert result.counts == {"applied": 0, "failed": 0, "not_attempted": 1}


def test_ctrl_c_lets_the_call_in_flight_finish_and_records_it() -> None:
    api = FakeApi()
    recorder = FakeRecorder()

    def interrupt_then_finish() -> None:
        _thread.interrupt_main()
        time.sleep(0.2)  # still in flight when the main thread sees the interrupt

    api.fail("create", "a", interrupt_then_finish)
    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "abc"], one, recorder)

    assert result.interrupted
    assert outcomes(result) == {"a": "applied", "b": "not_attempted", "c": "not_attempted"}
    assert recorder.recorded == [("create", "a", {"createdAt": 1700000000000})]
    assert api.calls == [("create", "a")]


def test_on_result_reports_each_change(pool: CallPool) -> None:
    seen: list[tuple[str, ChangeResult]] = []
    lock = threading.Lock()

    def on_result(app: str, result: ChangeResult) -> None:
        with lock:
            seen.append((app, result))

    run(FakeApi(), [change("create", "a"), change("create", "b")], pool, on_result=on_result)
    assert sorted((app, r.user_id, r.outcome) for app, r in seen) == [
        ("t", "a", "applied"),
        ("t", "b", "applied"),
    ]


# --- values ---------------------------------------------------------------------------------


def test_phases_put_deletes_alone_first() -> None:
    changes = [change("update", "u"), change("create", "c"), change("delete", "d")]
    assert [[c.user_id for c in phase] for phase in phases(changes)] == [["d"], ["c", "u"]]


def test_result_data_is_the_json_view() -> None:
    result = ApplyResult(
        "demo",
        "abc",
        (
            ChangeResult("create", "a", "applied", note="n"),
            ChangeResult("delete", "b", "not_attempted"),
        ),
        interrupted=True,
    )
    assert result.data == {
        "app": "demo",
        "planId": "abc",
        "interrupted": True,
        "counts": {"applied": 1, "failed": 0, "not_attempted": 1},
        "changes": [
            {"action": "create", "userId": "a", "outcome": "applied", "note": "n"},
            {"action": "delete", "userId": "b", "outcome": "not_attempted"},
        ],
    }


def test_error_data_of_a_transport_error_names_the_endpoint() -> None:
    error = TransportError("timed out", endpoint="/v3/bot/get.json", hint="retry")
    assert error_data(error) == {
        "type": "TransportError",
        "message": "timed out",
        "endpoint": "/v3/bot/get.json",
        "hint": "retry",
    }


def test_canonical_matcher_compares_canonical_forms() -> None:
    matches = canonical_matcher(SALT)
    created = change("create", "a")
    live = payload("a").model_copy(update={"createdAt": 1, "updatedAt": 2})
    assert matches(created, live)
    assert not matches(created, payload("a", name="Other"))
    assert not matches(created, payload("a", key="rotated-key"))
    assert matches(created, payload("a", key="******"))
    assert not matches(change("delete", "a"), live)


def test_summary_text_lists_failures_with_their_api_facts() -> None:
    from provisioner.render.apply import progress_line, render_summary

    failed = ChangeResult("create", "b", "failed", error=api_error(1502))
    result = ApplyResult(
        "demo",
        "abc",
        (
            ChangeResult("delete", "a", "applied", note="already absent on the server"),
            failed,
            ChangeResult("update", "c", "not_attempted"),
        ),
    )
    assert render_summary(result) == (
        "\n"
        "Apply incomplete for app demo: 1 applied, 1 failed, 1 not attempted.\n"
        "  Failed:\n"
        "    + b (create)\n"
        "        RongCloud refused the call (1502)\n"
        '        endpoint /v3/bot/create.json, HTTP 400, code 1502, errorMessage "error 1502",'
        " X-Request-ID req-1502\n"
        "  Not attempted:\n"
        "    ~ c (update)\n"
    )
    assert progress_line("demo", result.results[0]) == (
        "demo: - a: deleted (already absent on the server)"
    )
    assert progress_line("demo", failed) == (
        "demo: + b: create failed: RongCloud refused the call (1502)"
    )
    assert progress_line("demo", result.results[2]) == "demo: ~ c: not attempted"
