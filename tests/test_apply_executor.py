"""apply/executor.py: order, the shared call pool, recording on the app's thread, halts, stops.

Runs the real executor against the stateful fake of tests/apply_fakes.py (no network).
"""

from __future__ import annotations

import _thread
import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from provisioner.apply.executor import (
    RECORDING_THREADS,
    CallPool,
    apply_plan,
    is_fatal,
    phases,
)
from provisioner.apply.interrupts import StopSignal
from provisioner.apply.recorder import StateRecorder
from provisioner.apply.results import ChangeResult
from provisioner.errors import ApiError, PlanError, StateError
from provisioner.plan import Change
from tests.apply_fakes import (
    NAME_DIFF,
    FakeApi,
    FakeRecorder,
    api_error,
    change,
    job,
    outcomes,
    payload,
    run,
)


@pytest.fixture
def pool() -> Iterator[CallPool]:
    with CallPool(4) as shared:
        yield shared


def in_a_thread(pool: CallPool, *jobs: Any) -> list[Any]:
    """Apply each job from its own thread (as the CLI does), all at once."""
    results: list[Any] = [None] * len(jobs)

    def body(index: int) -> None:
        results[index] = pool.apply(jobs[index])

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


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


def test_one_app_can_use_every_worker_but_never_more() -> None:
    api = FakeApi(latency=0.02)
    with CallPool(3) as small_pool:
        result = run(api, [change("create", f"b{i}") for i in range(10)], small_pool)
    assert result.ok
    assert api.max_in_flight == 3


def test_apps_take_turns_on_the_shared_pool() -> None:
    """Each app keeps at most one change waiting for a worker: with one worker, two apps'
    calls alternate instead of one app's whole phase going first."""
    api = FakeApi(latency=0.005)
    first = job(api, [change("create", f"a{i}") for i in range(4)], app="one")
    second = job(api, [change("create", f"b{i}") for i in range(4)], app="two")
    with CallPool(1) as one:
        results = in_a_thread(one, first, second)
    assert all(result.ok for result in results)
    order = [user_id[0] for method, user_id in api.calls]
    switches = sum(1 for left, right in itertools.pairwise(order) if left != right)
    assert switches >= 5, order


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

    with CallPool(1, on_result=on_result) as one:
        result = run(api, [change("create", n) for n in "ab"], one, recorder)
    assert result.ok
    # each change counts as applied only once its own state write is done; the two
    # recording threads may finish b's write before a's
    assert sorted(user_id for user_id, _ in reported) == ["a", "b"]
    assert all(user_id in recorded for user_id, recorded in reported), reported


def test_answers_are_recorded_off_the_call_workers_by_the_recording_threads(
    pool: CallPool,
) -> None:
    """At most RECORDING_THREADS writes at once (StateRecorder's own lock then makes one
    app's writes one at a time), never on a call worker."""

    class WatchingRecorder(FakeRecorder):
        def __init__(self) -> None:
            super().__init__()
            self.threads: set[str] = set()
            self.writing = 0
            self.most_writing = 0
            self.counting = threading.Lock()

        def record(self, change: Change, server: Mapping[str, Any]) -> None:
            with self.counting:
                self.threads.add(threading.current_thread().name)
                self.writing += 1
                self.most_writing = max(self.most_writing, self.writing)
            time.sleep(0.01)
            with self.counting:
                self.writing -= 1
            super().record(change, server)

    recorder = WatchingRecorder()
    (result,) = in_a_thread(pool, job(FakeApi(), [change("create", f"b{i}") for i in range(8)]))
    assert result.ok and len(recorder.recorded) == 0  # the job got its own recorder
    app_job = job(FakeApi(), [change("create", f"b{i}") for i in range(8)], recorder)
    (result,) = in_a_thread(pool, app_job)
    assert result.ok and len(recorder.recorded) == 8
    assert all(name.startswith("record") for name in recorder.threads), recorder.threads
    assert recorder.most_writing == RECORDING_THREADS == len(recorder.threads)


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


def test_on_result_reports_each_change() -> None:
    seen: list[tuple[str, ChangeResult]] = []
    with CallPool(2, on_result=lambda app, result: seen.append((app, result))) as pool:
        run(FakeApi(), [change("create", "a"), change("create", "b")], pool)
    assert sorted((app, r.user_id, r.outcome) for app, r in seen) == [
        ("t", "a", "applied"),
        ("t", "b", "applied"),
    ]


def test_phases_put_deletes_alone_first() -> None:
    changes = [change("update", "u"), change("create", "c"), change("delete", "d")]
    assert [[c.user_id for c in phase] for phase in phases(changes)] == [["d"], ["c", "u"]]


# --- failures and halts ---------------------------------------------------------------------


def test_a_failed_call_does_not_stop_the_others(pool: CallPool) -> None:
    api = FakeApi()
    api.fail("create", "b", api_error(1002))
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
            "message": "RongCloud refused the call (1002)",
            "endpoint": "/v3/bot/create.json",
            "httpStatus": 400,
            "code": 1002,
            "errorMessage": "error 1002",
            "requestId": "req-1002",
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


def test_a_failure_to_persist_stops_new_calls_and_is_reported() -> None:
    recorder = FakeRecorder()
    recorder.fail_to_persist_after = 1
    api = FakeApi(latency=0.2)  # b is still in flight when a's write reports the failure
    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "abc"], one, recorder)
    assert result.counts["applied"] >= 1 and result.counts["not_attempted"] >= 1
    assert result.persist_error is recorder.pending and not result.ok
    assert len(api.calls) <= 2  # the call in flight when the push failed, at most


def test_refused_credentials_stop_new_calls() -> None:
    api = FakeApi()
    api.fail("create", "a", api_error(1004, 401))
    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "abc"], one)
    assert outcomes(result) == {"a": "failed", "b": "not_attempted", "c": "not_attempted"}


def test_is_fatal() -> None:
    assert is_fatal(StateError("disk full"))
    assert is_fatal(api_error(1004, 401)) and is_fatal(api_error(1, 403))
    assert not is_fatal(api_error(1502)) and not is_fatal(ApiError("x", **_no_facts()))


def _no_facts() -> dict[str, Any]:
    return {"endpoint": "/", "http_status": None, "code": None, "error_message": None,
            "request_id": None}  # fmt: skip


def test_a_bug_in_a_call_is_raised_once_the_calls_in_flight_are_done(pool: CallPool) -> None:
    api = FakeApi(latency=0.01)

    def bug() -> None:
        raise ZeroDivisionError("oops")

    api.fail("create", "b", bug)
    with pytest.raises(ZeroDivisionError):
        run(api, [change("create", n) for n in "abcdef"], pool)
    assert api.in_flight == 0


# --- stops ----------------------------------------------------------------------------------


def test_a_set_stop_signal_leaves_everything_not_attempted() -> None:
    stop = StopSignal()
    stop.set()
    api = FakeApi()
    with CallPool(2, stop=stop) as pool:
        result = run(api, [change("create", "a")], pool)
    assert api.calls == [] and result.interrupted
    assert result.counts == {"applied": 0, "failed": 0, "not_attempted": 1}


def test_a_stop_lets_calls_in_flight_finish_and_cancels_the_rest() -> None:
    api = FakeApi()
    stop = StopSignal()
    api.fail("create", "a", lambda: (stop.set(), time.sleep(0.05)))
    recorder = FakeRecorder()
    with CallPool(1, stop=stop) as pool:
        (result,) = in_a_thread(pool, job(api, [change("create", n) for n in "abc"], recorder))
    assert result.interrupted
    assert outcomes(result) == {"a": "applied", "b": "not_attempted", "c": "not_attempted"}
    assert api.calls == [("create", "a")]
    assert [user_id for _, user_id, _ in recorder.recorded] == ["a"]


def test_ctrl_c_lets_the_call_in_flight_finish_and_records_it() -> None:
    api = FakeApi()
    recorder = FakeRecorder()

    def interrupt_then_finish() -> None:
        _thread.interrupt_main()
        time.sleep(0.2)  # still in flight when the main thread sees the interrupt

    api.fail("create", "a", interrupt_then_finish)
    with CallPool(1) as one:
        result = run(api, [change("create", n) for n in "abc"], one, recorder)
        assert one.stop.reason == "interrupted"

    assert result.interrupted
    assert outcomes(result) == {"a": "applied", "b": "not_attempted", "c": "not_attempted"}
    assert recorder.recorded == [("create", "a", {"createdAt": 1700000000000})]
    assert api.calls == [("create", "a")]


def test_apply_plan_refuses_a_plan_made_against_another_state(pool: CallPool) -> None:
    from pathlib import Path

    from provisioner.models import AppSettings, DesiredApp
    from provisioner.plan import make_plan
    from provisioner.state.model import RecordedApp
    from tests.apply_fakes import ENV, bot

    desired = DesiredApp(
        name="t",
        folder=Path("bots/t"),
        settings=AppSettings(endpoint="local"),
        bots=(bot("a"),),
        sources={},
    )
    state = RecordedApp.fresh("t")
    plan = make_plan(desired, state, ENV)

    class Backend:
        def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
            self.state = state

        def pending_error(self) -> None:
            return None

    moved = StateRecorder(Backend(), state.with_bot("x", None))  # type: ignore[arg-type]
    with pytest.raises(PlanError) as caught:
        apply_plan(plan, desired, ENV, FakeApi(), moved, pool)
    assert caught.value.message == (
        "the plan for app t was made against state serial 0, but the state is now at serial 1"
    )
    backend = Backend()
    recorder = StateRecorder(backend, state)  # type: ignore[arg-type]
    result = apply_plan(plan, desired, ENV, FakeApi(), recorder, pool)
    assert result.ok and set(backend.state.bots) == {"a"} and backend.state.serial == 1
