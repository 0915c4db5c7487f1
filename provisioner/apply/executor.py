"""Apply: execute a Plan's changes through the API and record each success in state.

Order: every delete runs (and completes) before anything else, because deletes free quota;
then creates and adopts, then updates. The calls of every app of a run go through one
:class:`CallPool` of ``concurrency`` workers (so at most that many calls are in flight); the
client's token bucket keeps each app under its rate limit.

Each app is applied by its own thread (the caller's), which hands the pool its fair share of
changes (see :class:`CallPool`), so the apps of a run take turns instead of one app's whole
phase filling every worker, and then sleeps until the phase is done. What follows a call runs
without waking it: the answer goes to one of the pool's :data:`RECORDING_THREADS` recording
threads, which records it (the state write after EACH successful call, so an interrupted or
failed apply leaves a state that holds exactly what was applied), reports it, and hands the
pool the app's next change, while the freed worker is already making another call. A change
counts as applied only once it is recorded. (A hundred app threads waking up after every
call, each writing its own state, kept that many threads fighting for the GIL: the apply of
tests/benchmarks/bench_apply.py took about a fifth longer.)

Ambiguity (the call may or may not have taken effect) is settled by reading the bot back,
never by a blind repeat: see :mod:`provisioner.apply.settle`. Once an app's calls are done,
its thread reads the written bots back (:mod:`provisioner.apply.readback`): a bot the server
did not keep as declared fails its change as not converged.

A change that fails is reported and the others go on, except after a fatal error (the state
cannot be written or persisted, the credentials are refused): then nothing new starts. A stop
(the pool's :class:`StopSignal`: Ctrl-C or SIGTERM while the main thread waits, or anyone
setting it) lets the calls in flight finish and be recorded, cancels what has not started,
and reports the rest as not attempted. No apply work runs in the main thread: called there,
:meth:`CallPool.apply` runs the app in a thread and waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from provisioner.apply.interrupts import StopSignal, on_main_thread, run_through_stops
from provisioner.apply.readback import ReadBack, read_back_enabled
from provisioner.apply.recorder import Recorder, StateRecorder
from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.apply.settle import BotApi, ChangeRunner, Settled, canonical_matcher
from provisioner.errors import (
    ApiError,
    PlanError,
    ProvisionerError,
    StateError,
    StateNotPersistedError,
)
from provisioner.models import DesiredApp
from provisioner.plan import Change, Plan
from provisioner.plan.canonical import api_payload
from provisioner.rongcloud.models import BotPayload

RECORDING_THREADS = 2
"""Threads recording answers (state writes) for every app of a run: each write holds the GIL
to encode its JSON, so more writers only slow the calls down."""

OnResult = Callable[[str, ChangeResult], None]
"""``on_result(app, result)``: called from a recording thread as each change settles (two
may call it at once: guard what it shares)."""


def phases(changes: Iterable[Change]) -> list[list[Change]]:
    """Deletes (run to completion first), then creates/adopts, then updates; plan order kept."""
    ordered = sorted(changes, key=lambda change: change.sort_key)
    deletes = [change for change in ordered if change.action == "delete"]
    others = [change for change in ordered if change.action != "delete"]
    return [group for group in (deletes, others) if group]


def is_fatal(error: ProvisionerError) -> bool:
    """Errors after which no new call should start: state unwritable, credentials refused."""
    if isinstance(error, StateError):
        return True
    return isinstance(error, ApiError) and error.http_status in (401, 403)


@dataclass(frozen=True)
class AppJob:
    """Everything needed to apply one app's changes: the API bodies (``payloads``, userId →
    desired body with secrets resolved), who makes the calls and who records them.
    ``held``: userId → why that bot gets no call (``apply --check``); its change fails.
    ``record_only``: userId → why that bot's change is recorded without a call (a reviewed
    delete of a bot already gone from the server)."""

    app: str
    plan_id: str
    changes: Sequence[Change]
    payloads: Mapping[str, BotPayload]
    runner: ChangeRunner
    recorder: Recorder
    held: Mapping[str, ProvisionerError] = field(default_factory=dict)
    record_only: Mapping[str, str] = field(default_factory=dict)
    read_back: ReadBack | None = None
    """Reads the written bots back once the calls are done (None: trusts the answers)."""


class CallPool:
    """The workers shared by every app of one run, the run's stop signal and the callback
    that reports each settled change. A context manager; leaving it waits for every call.

    Each app applying keeps at most its fair share of the pool — ``concurrency`` divided by
    the number of apps applying, at least one — in the pool's queue or running, so the apps
    of a run take turns (and one app's later calls do not sit on its key's rate limiter
    holding workers that other apps could use); an app alone may use every worker.
    """

    def __init__(
        self, concurrency: int, *, stop: StopSignal | None = None, on_result: OnResult | None = None
    ) -> None:
        self._size = max(1, concurrency)
        self._workers = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix="call")
        self._recorders = ThreadPoolExecutor(
            max_workers=RECORDING_THREADS, thread_name_prefix="record"
        )
        self._lock = threading.Lock()
        self._applying = 0
        self.stop = stop if stop is not None else StopSignal()
        self.on_result = on_result

    def apply(self, job: AppJob) -> ApplyResult:
        """Apply ``job`` from the calling thread; returns when every change is settled, or
        after a fatal error or a stop once the calls in flight are done and recorded. Never
        raises for a failed change."""
        calls = _AppCalls(job, self)
        with self._lock:
            self._applying += 1
        try:
            if not on_main_thread():
                return calls.run()
            return run_through_stops(calls.run, self.stop, f"apply {job.app}")
        finally:
            with self._lock:
                self._applying -= 1

    def share(self) -> int:
        """How many calls each app applying may have in the pool now."""
        with self._lock:
            return max(1, -(-self._size // max(1, self._applying)))

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._workers.submit(function, *args)

    def record_later(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function`` on a recording thread (here, once the pool is shut down)."""
        try:
            self._recorders.submit(function, *args)
        except RuntimeError:
            function(*args)

    def shutdown(self) -> None:
        """Cancel the calls not started, wait for the others, then for their recording
        (never cancelled: a call that was made is recorded)."""
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._recorders.shutdown(wait=True)

    def __enter__(self) -> CallPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def apply_plan(
    plan: Plan,
    desired: DesiredApp,
    env: Mapping[str, str],
    api: BotApi,
    recorder: StateRecorder,
    pool: CallPool,
    held: Mapping[str, ProvisionerError] | None = None,
    record_only: Mapping[str, str] | None = None,
) -> ApplyResult:
    """Apply ``plan`` (made against ``recorder.state``, which the caller holds locked) to
    ``desired``: API bodies resolved from ``env``, each success recorded by ``recorder``,
    ambiguous writes settled by comparing canonical forms. PlanError when the plan was not
    made against that state; UnsafePlanError (exit 3) when it is blocked."""
    state = recorder.state
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
    runner = ChangeRunner(api, canonical_matcher(state.salt))
    read_back = ReadBack(api, state.salt, payloads) if read_back_enabled(env) else None
    job = AppJob(
        plan.app,
        plan.id,
        plan.changes,
        payloads,
        runner,
        recorder,
        held or {},
        record_only or {},
        read_back,
    )
    return pool.apply(job)


class _AppCalls:
    """One app's apply: its thread hands out the changes, the recording threads settle them
    (see the module docstring)."""

    def __init__(self, job: AppJob, pool: CallPool) -> None:
        self.job = job
        self.pool = pool
        self.positions = {id(change): position for position, change in enumerate(job.changes)}
        self.results: dict[int, ChangeResult] = {}
        self.halted = False
        self.bug: BaseException | None = None
        self.unpersisted: StateNotPersistedError | None = None
        """The state could not reach its shared store (kept locally): applied, then halt."""
        self._lock = threading.Lock()
        self._waiting: Iterator[Change] = iter(())
        self._in_pool: set[Future[Settled | None]] = set()
        """Changes handed to the pool whose call has not ended: the app's share in use."""
        self._unsettled: dict[Future[Settled | None], Change] = {}
        """Changes handed to the pool and not recorded (or cancelled) yet."""
        self._phase_end: Future[None] = Future()

    def run(self) -> ApplyResult:
        for phase in phases(self.job.changes):
            if self.stopping():
                break
            self._run_phase(phase)
        if self.bug is not None:
            raise self.bug
        results = tuple(
            self.results.get(position)
            or ChangeResult(change.action, change.user_id, "not_attempted")
            for position, change in enumerate(self.job.changes)
        )
        if self.job.read_back is not None and not self.stopping():
            results = self.job.read_back.verify(
                self.job.changes, results, self.job.recorder, self.job.record_only, self._reported
            )
        return ApplyResult(
            self.job.app,
            self.job.plan_id,
            results,
            interrupted=self.pool.stop.is_set(),
            persist_error=self.job.recorder.pending_error() or self.unpersisted,
        )

    def stopping(self) -> bool:
        """No new call may start: a fatal error here, a stop of the run, or state that could
        not be persisted."""
        return (
            self.halted or self.pool.stop.is_set() or self.job.recorder.pending_error() is not None
        )

    def _run_phase(self, phase: Sequence[Change]) -> None:
        """Hand the pool the phase's first changes and sleep until every change handed out
        is settled (the recording threads hand out the rest); after a stop, cancel what has
        not started and wait for the calls in flight."""
        with self._lock:
            self._waiting = iter(phase)
            self._phase_end = Future()
        self._top_up()
        watch: set[Future[Any]] = {self._phase_end, self.pool.stop.future}
        wait(watch, return_when=FIRST_COMPLETED)
        if not self._phase_end.done():
            self._cancel_queued()
            self._phase_end.result()

    def _top_up(self) -> None:
        """Hand the pool the next changes until the app has its share in it (unless
        stopping); end the phase once nothing handed out is left to settle."""
        handed: list[Future[Settled | None]] = []
        with self._lock:
            while not self.stopping() and len(self._in_pool) < self.pool.share():
                change = next(self._waiting, None)
                if change is None:
                    break
                try:
                    future = self.pool.submit(self._call, change)
                except RuntimeError:  # the pool is shut down: nobody will run it
                    self.halted = True
                    break
                self._in_pool.add(future)
                self._unsettled[future] = change
                handed.append(future)
            if not self._unsettled and not self._phase_end.done():
                self._phase_end.set_result(None)
        for future in handed:  # outside the lock: a call already done runs it here
            future.add_done_callback(self._call_ended)

    def _call_ended(self, future: Future[Settled | None]) -> None:
        """On the worker (or whoever cancelled it): the freed share goes to the app's next
        change first, then the answer goes to a recording thread."""
        with self._lock:
            self._in_pool.discard(future)
        if future.cancelled():
            self._settled(future)
            return
        self._top_up()
        self.pool.record_later(self._record, future)

    def _record(self, future: Future[Settled | None]) -> None:
        """On a recording thread: record and report the change."""
        with self._lock:
            change = self._unsettled[future]
        try:
            result = self._outcome(change, future)
            if result is not None:
                self._report(change, result)
        except BaseException as exc:  # a bug: stop this app, raise it once the calls are done
            self.halted = True
            self.bug = self.bug or exc
        finally:
            self._settled(future)

    def _settled(self, future: Future[Settled | None]) -> None:
        with self._lock:
            self._unsettled.pop(future, None)
        if self.stopping():
            self._cancel_queued()
        self._top_up()

    def _cancel_queued(self) -> None:
        """Cancel every change handed out whose call has not started."""
        with self._lock:
            handed = list(self._in_pool)
        for future in handed:
            future.cancel()

    def _call(self, change: Change) -> Settled | None:
        """On a worker: the API call (None: skipped, its turn came after a stop). A fatal
        error halts the app here, before this worker can take the app's next change."""
        if self.stopping():
            return None
        held = self.job.held.get(change.user_id)
        if held is not None and change.action != "delete":
            raise held
        note = self.job.record_only.get(change.user_id)
        if note is not None:
            return Settled(note=note)
        try:
            return self.job.runner.run(change, self.job.payloads.get(change.user_id))
        except ProvisionerError as exc:
            if is_fatal(exc):
                self.halted = True
            raise

    def _outcome(self, change: Change, future: Future[Settled | None]) -> ChangeResult | None:
        """Applied once recorded, failed with the error, or None when it was skipped."""
        try:
            settled = future.result()
            if settled is None:
                return None
            self.job.recorder.record(change, settled.server)
        except StateNotPersistedError as exc:
            self.unpersisted = self.unpersisted or exc
            note = "recorded on local disk only: the state could not be persisted (see below)"
            return ChangeResult(change.action, change.user_id, "applied", note=note)
        except ProvisionerError as exc:
            if is_fatal(exc):
                self.halted = True
            return ChangeResult(change.action, change.user_id, "failed", error=exc)
        return ChangeResult(change.action, change.user_id, "applied", note=settled.note)

    def _reported(self, result: ChangeResult) -> None:
        """A change's result changed after the read-back: report it once more."""
        if self.pool.on_result is not None:
            self.pool.on_result(self.job.app, result)

    def _report(self, change: Change, result: ChangeResult) -> None:
        self.results[self.positions[id(change)]] = result
        if self.pool.on_result is not None:
            self.pool.on_result(self.job.app, result)
