"""Apply: execute a Plan's changes through the API and record each success in state.

Order: every delete runs (and completes) before anything else, because deletes free quota;
then creates and adopts, then updates. Calls run on a shared, bounded thread pool
(``concurrency`` calls in flight); the client's token bucket keeps them under the app's rate
limit. After EACH successful call the recorder writes the state, so an interrupted or failed
apply leaves a state that holds exactly what was applied. The write runs on a recording
thread, so the call's worker can start the next call meanwhile; the change counts as applied
(and is reported) only once its write is done.

Ambiguity (the call may or may not have taken effect) is settled by reading the bot back,
never by a blind repeat: see :mod:`provisioner.settle`.

A change that fails is reported and the others go on, except after a fatal error (the state
cannot be written, the credentials are refused): then nothing new starts. Interruption
(Ctrl-C in the calling thread, or ``stop`` set by another thread) lets in-flight calls finish
and reports the rest as not attempted.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from provisioner.canonical import api_payload
from provisioner.errors import ApiError, PlanError, ProvisionerError, StateError, TransportError
from provisioner.interrupts import MAIN_THREAD_POLL_SECONDS
from provisioner.models import DesiredApp
from provisioner.plan import Change, Plan
from provisioner.rongcloud.models import BotPayload
from provisioner.settle import BotApi, ChangeRunner, Matcher, Settled, canonical_matcher
from provisioner.state import RecordedApp, RecordedBot

__all__ = [
    "ApplyResult",
    "BotApi",
    "CallPool",
    "ChangeResult",
    "Matcher",
    "Recorder",
    "StateRecorder",
    "apply_changes",
    "apply_plan",
    "canonical_matcher",
    "error_data",
    "is_fatal",
    "new_pool",
    "phases",
]

Outcome = Literal["applied", "failed", "not_attempted"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "failed", "not_attempted")

DEFAULT_CONCURRENCY = 8
_THREAD_POLL_SECONDS = 0.5
"""How often an apply waiting in a thread other than the main one wakes up (the CLI runs one
per app; in the main thread it is :data:`~provisioner.interrupts.MAIN_THREAD_POLL_SECONDS`,
to let a Ctrl-C through). No Ctrl-C arrives there: it is woken at once when the changes it
waits for have settled or the run is stopping, so this only bounds the wait when nothing
moves. A short poll there costs real CPU: one waiting thread per app."""


class Recorder(Protocol):
    """Records one successful change in state (and persists it) before returning.

    Called from worker threads; implementations serialise themselves. Raises StateError when
    the state cannot be written.
    """

    def record(self, change: Change, server: Mapping[str, Any]) -> None: ...


class StateBackend(Protocol):
    """Where recorded state is persisted (``provisioner.state.FileBackend``)."""

    def write(self, state: RecordedApp) -> None: ...


@dataclass(frozen=True)
class ChangeResult:
    """What happened to one change."""

    action: str
    user_id: str
    outcome: Outcome
    error: ProvisionerError | None = None
    note: str | None = None
    """How it was settled when not by the plain call, e.g. "settled by reading back"."""

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "action": self.action,
            "userId": self.user_id,
            "outcome": self.outcome,
        }
        if self.note:
            data["note"] = self.note
        if self.error is not None:
            data["error"] = error_data(self.error)
        return data


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of applying one app's plan: one ChangeResult per change, in plan order."""

    app: str
    plan_id: str
    results: tuple[ChangeResult, ...]
    interrupted: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Every change applied."""
        return all(result.outcome == "applied" for result in self.results)

    @property
    def data(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "planId": self.plan_id,
            "interrupted": self.interrupted,
            "counts": self.counts,
            "changes": [result.data for result in self.results],
        }


def error_data(error: ProvisionerError) -> dict[str, Any]:
    """The reportable facts of an error: never a request body, so never a secret."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": error.message}
    if isinstance(error, ApiError):
        data.update(
            endpoint=error.endpoint,
            httpStatus=error.http_status,
            code=error.code,
            errorMessage=error.error_message,
            requestId=error.request_id,
        )
    elif isinstance(error, TransportError):
        data["endpoint"] = error.endpoint
    if error.hint:
        data["hint"] = error.hint
    return data


def is_fatal(error: ProvisionerError) -> bool:
    """Errors after which no new call should start: state unwritable, credentials refused."""
    if isinstance(error, StateError):
        return True
    return isinstance(error, ApiError) and error.http_status in (401, 403)


# --- the whole plan ---------------------------------------------------------------------------


def phases(changes: Iterable[Change]) -> list[list[Change]]:
    """Deletes (run to completion first), then creates/adopts, then updates; plan order kept."""
    ordered = sorted(changes, key=lambda change: change.sort_key)
    deletes = [change for change in ordered if change.action == "delete"]
    others = [change for change in ordered if change.action != "delete"]
    return [group for group in (deletes, others) if group]


class _Run:
    """The bookkeeping of one apply: results by change position, and two reasons to stop.

    ``interrupt`` comes from outside (Ctrl-C, shared by every app of a run); ``halt`` is set
    by a fatal error of this app. Either one stops new calls: a change whose turn comes after
    that is skipped (not attempted); the calls in flight (``active``) finish.
    """

    def __init__(self, interrupt: threading.Event) -> None:
        self.interrupt = interrupt
        self.halt = threading.Event()
        self.results: dict[int, ChangeResult] = {}
        self._cond = threading.Condition()
        self._poll = (
            MAIN_THREAD_POLL_SECONDS
            if threading.current_thread() is threading.main_thread()
            else _THREAD_POLL_SECONDS
        )
        self._active = 0
        self._finished = 0
        self._awaited = 0
        """The count ``wait_for`` waits for: the waiter is woken only once it is reached (or
        the run is stopping), not at every change (one app thread per app waits)."""

    def stopping(self) -> bool:
        return self.interrupt.is_set() or self.halt.is_set()

    def begin(self) -> bool:
        """Called by a worker before its change: False when it must be skipped."""
        with self._cond:
            if self.stopping():
                self._finish_one()
                return False
            self._active += 1
            return True

    def end(self) -> None:
        with self._cond:
            self._active -= 1
            self._finish_one()

    def _finish_one(self) -> None:
        self._finished += 1
        if self._finished >= self._awaited or self.stopping():
            self._cond.notify_all()

    def wait_for(self, finished: int) -> None:
        """Until ``finished`` changes are done or skipped, or a stop is asked for."""
        with self._cond:
            self._awaited = finished
            while self._finished < finished and not self.stopping():
                self._cond.wait(self._poll)

    def wait_idle(self) -> None:
        """Until no call is in flight; a further Ctrl-C does not abandon them."""
        while True:
            try:
                with self._cond:
                    while self._active:
                        self._cond.wait(self._poll)
                return
            except KeyboardInterrupt:
                continue


class _FrozenHeap:
    """While any apply runs, the objects that existed when the first one started are kept
    out of the cyclic garbage collector's way (``gc.freeze``); the last one to end puts them
    back (``gc.unfreeze``). Leaves the collector alone if someone else froze objects first.

    Everything loaded and planned before the calls (manifests, models, plans) lives until the
    run ends, yet every full collection walked all of it again, holding the GIL for tens of
    milliseconds while the answers that arrived waited for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._froze = False

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0 and gc.get_freeze_count() == 0:
                gc.freeze()
                self._froze = True
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._froze:
                gc.unfreeze()
                self._froze = False


_FROZEN_HEAP = _FrozenHeap()


def apply_changes(
    app: str,
    plan_id: str,
    changes: Sequence[Change],
    payloads: Mapping[str, BotPayload],
    api: BotApi,
    recorder: Recorder,
    pool: CallPool,
    *,
    matcher: Matcher,
    stop: threading.Event | None = None,
    on_result: Callable[[str, ChangeResult], None] | None = None,
) -> ApplyResult:
    """Apply ``changes`` of ``app`` (``payloads``: userId → desired API body, secrets resolved).

    Calls run on ``pool.calls`` (its size bounds the calls in flight); each success is
    recorded by ``recorder``, on ``pool.records``, before the change counts as applied;
    ``matcher`` settles ambiguous writes (:func:`canonical_matcher`).
    ``on_result(app, result)`` is called (from a worker thread) as each change settles.
    Returns when every change is settled or, after a fatal error / ``stop`` /
    KeyboardInterrupt in this thread, when in-flight calls and their writes are done; never
    raises for a failed change.
    """
    run = _Run(stop if stop is not None else threading.Event())
    runner = ChangeRunner(api, matcher)
    futures: list[Future[None]] = []

    def execute(position: int, change: Change) -> None:
        """On a call worker: the API call; then the state write is handed on."""
        if not run.begin():
            return
        try:
            settled = runner.run(change, payloads.get(change.user_id))
        except ProvisionerError as exc:
            fail(position, change, exc)
            return
        except BaseException:
            run.end()
            raise
        try:
            futures.append(pool.records.submit(record, position, change, settled))
        except RuntimeError:  # the recording workers are shut down: record on this one
            record(position, change, settled)

    def record(position: int, change: Change, settled: Settled) -> None:
        """On a recording worker: the state write that makes the change count as applied."""
        try:
            recorder.record(change, settled.server)
        except ProvisionerError as exc:
            fail(position, change, exc)
        except BaseException:
            run.end()
            raise
        else:
            applied = ChangeResult(change.action, change.user_id, "applied", note=settled.note)
            finish(position, applied)

    def fail(position: int, change: Change, error: ProvisionerError) -> None:
        if is_fatal(error):
            run.halt.set()
        finish(position, ChangeResult(change.action, change.user_id, "failed", error=error))

    def finish(position: int, result: ChangeResult) -> None:
        try:
            run.results[position] = result
            if on_result is not None:
                on_result(app, result)
        finally:
            run.end()

    positions = {id(change): position for position, change in enumerate(changes)}
    submitted = 0
    with _FROZEN_HEAP:
        for phase in phases(changes):
            try:
                if run.stopping():
                    break
                _Feeder(pool.calls, execute, positions, phase, run, futures).feed()
                submitted += len(phase)
                run.wait_for(submitted)
            except KeyboardInterrupt:
                run.interrupt.set()
            run.wait_idle()
            for future in futures:
                if future.done():
                    future.result()  # re-raises a bug in execute(); failed calls are results
    results = tuple(
        run.results.get(position) or ChangeResult(change.action, change.user_id, "not_attempted")
        for position, change in enumerate(changes)
    )
    return ApplyResult(app, plan_id, results, interrupted=run.interrupt.is_set())


class _Feeder:
    """Hands one phase's changes to the shared pool one at a time, in plan order.

    Only one change of this app waits in the pool's queue at any moment: the next one is
    queued when the previous one starts. The pool serves its queue first come, first served,
    so the apps of a run take turns instead of one app's whole phase filling every worker
    (where its later calls would sit on the app key's rate limiter, holding workers that
    other apps' calls could use). The order of one app's calls is unchanged.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        execute: Callable[[int, Change], None],
        positions: Mapping[int, int],
        phase: Sequence[Change],
        run: _Run,
        futures: list[Future[None]],
    ) -> None:
        self._pool = pool
        self._execute = execute
        self._positions = positions
        self._pending = iter(phase)
        self._run = run
        self._futures = futures
        self._lock = threading.Lock()

    def feed(self) -> None:
        """Queue the next change of the phase (if any, and unless the run is stopping).

        Should the pool refuse it (shut down), the app stops, so that nobody waits for
        changes that will never run, and the error is raised.
        """
        with self._lock:
            if self._run.stopping():
                return
            change = next(self._pending, None)
            if change is None:
                return
            try:
                future = self._pool.submit(self._start, self._positions[id(change)], change)
            except BaseException:
                self._run.halt.set()
                raise
            self._futures.append(future)

    def _start(self, position: int, change: Change) -> None:
        try:
            self.feed()
        finally:
            self._execute(position, change)


def apply_plan(
    plan: Plan,
    desired: DesiredApp,
    env: Mapping[str, str],
    api: BotApi,
    backend: StateBackend,
    state: RecordedApp,
    pool: CallPool,
    *,
    stop: threading.Event | None = None,
    on_result: Callable[[str, ChangeResult], None] | None = None,
) -> ApplyResult:
    """Apply ``plan`` (made against ``state``, which the caller holds locked) to ``desired``.

    Resolves the API bodies from ``env``, records each success into ``state`` through
    ``backend``, and settles ambiguous writes by comparing canonical forms. PlanError when the
    plan was not made against ``state``; UnsafePlanError (exit 3) when it is blocked.
    """
    if (plan.lineage, plan.serial) != (state.lineage, state.serial):
        raise PlanError(
            f"the plan for app {plan.app} was made against state serial {plan.serial}, "
            f"but the state is now at serial {state.serial}",
            hint="re-run `provisioner plan` and review the new plan",
        )
    plan.raise_if_blocked()
    bots = {bot.userId: bot for bot in desired.bots}
    payloads = {
        change.user_id: api_payload(bots[change.user_id], env)
        for change in plan.changes
        if change.action != "delete"
    }
    return apply_changes(
        plan.app,
        plan.id,
        plan.changes,
        payloads,
        api,
        StateRecorder(backend, state),
        pool,
        matcher=canonical_matcher(state.salt),
        stop=stop,
        on_result=on_result,
    )


RECORDING_WORKERS = 2
"""Threads that write the state after the calls of a run. Two let one write's fsync overlap
the next one's encoding; more only compete with the call threads for the GIL (measured with
tests/benchmarks/bench_apply.py: 24 recording threads cost ~0.3 ms of CPU more per call and
made the run ~8% slower than 2)."""


class CallPool:
    """The workers shared by every app of one run: ``concurrency`` of them make the API calls
    (so at most that many calls are in flight), :data:`RECORDING_WORKERS` write the state
    after each.

    A call's worker is free for the next call as soon as the answer is in; the state write
    that follows (two fsyncs: milliseconds on a real disk) runs on a recording worker. A
    change still counts as applied, and its app's next phase still waits, until that write
    is done.
    """

    def __init__(self, concurrency: int) -> None:
        size = max(1, concurrency)
        self.calls = ThreadPoolExecutor(max_workers=size, thread_name_prefix="apply")
        self.records = ThreadPoolExecutor(
            max_workers=min(size, RECORDING_WORKERS), thread_name_prefix="record"
        )

    def shutdown(self) -> None:
        """Wait for every call, then for every state write they handed on."""
        self.calls.shutdown(wait=True)
        self.records.shutdown(wait=True)

    def __enter__(self) -> CallPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def new_pool(concurrency: int) -> CallPool:
    """The bounded pool of API calls (and their state writes) shared by every app of a run."""
    return CallPool(concurrency)


class StateRecorder:
    """Records changes into a RecordedApp and writes it through the backend after each one.

    Thread-safe: one write at a time, each from the state the previous write produced
    (serial + 1 per change).
    """

    def __init__(self, backend: StateBackend, state: RecordedApp) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.state = state

    def record(self, change: Change, server: Mapping[str, Any]) -> None:
        bot = None
        if change.action != "delete":
            spec = dict(change.after or {})
            bot = RecordedBot(spec=spec, protect=change.protect, server=dict(server))
        with self._lock:
            updated = self.state.with_bot(change.user_id, bot)
            try:
                self._backend.write(updated)
            except OSError as exc:
                raise StateError(
                    f"could not write the state after {change.action} of {change.user_id}: "
                    f"{exc.strerror or exc}",
                    hint="the call was applied; fix the state location and re-run apply "
                    "(it reads the bot back and records it)",
                ) from exc
            self.state = updated
