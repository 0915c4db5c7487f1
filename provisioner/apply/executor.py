"""Apply: execute a Plan's changes through the API and record each success in state.

Order: every delete runs (and completes) before anything else, because deletes free quota;
then creates and adopts, then updates. The calls of every app of a run go through one
:class:`CallPool` of ``concurrency`` workers (so at most that many calls are in flight); the
client's token bucket keeps each app under its rate limit.

Each app is applied by its own thread (the caller's), which keeps its fair share of the
pool busy with its changes (see :class:`CallPool`), so the apps of a run take turns instead
of one app's whole phase filling every worker. That thread also records each answer as it
arrives (the state write after EACH successful call, so an interrupted or failed apply leaves
a state that holds exactly what was applied), while the freed worker is already making the
next call. A change counts as applied only once it is recorded.

Ambiguity (the call may or may not have taken effect) is settled by reading the bot back,
never by a blind repeat: see :mod:`provisioner.apply.settle`.

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
from provisioner.apply.recorder import Recorder, StateRecorder
from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.apply.settle import BotApi, ChangeRunner, Settled, canonical_matcher
from provisioner.canonical import api_payload
from provisioner.errors import (
    ApiError,
    PlanError,
    ProvisionerError,
    StateError,
    StateNotPersistedError,
)
from provisioner.models import DesiredApp
from provisioner.plan import Change, Plan
from provisioner.rongcloud.models import BotPayload

DEFAULT_CONCURRENCY = 8

OnResult = Callable[[str, ChangeResult], None]
"""``on_result(app, result)``: called from the app's thread as each change settles."""


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
    ``held``: userId → why that bot gets no call (``apply --check``); its change fails."""

    app: str
    plan_id: str
    changes: Sequence[Change]
    payloads: Mapping[str, BotPayload]
    runner: ChangeRunner
    recorder: Recorder
    held: Mapping[str, ProvisionerError] = field(default_factory=dict)


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

    def shutdown(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)

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
    job = AppJob(plan.app, plan.id, plan.changes, payloads, runner, recorder, held or {})
    return pool.apply(job)


class _AppCalls:
    """One app's apply, driven by the app's own thread (see the module docstring)."""

    def __init__(self, job: AppJob, pool: CallPool) -> None:
        self.job = job
        self.pool = pool
        self.positions = {id(change): position for position, change in enumerate(job.changes)}
        self.results: dict[int, ChangeResult] = {}
        self.halted = False
        self.bug: BaseException | None = None
        self.unpersisted: StateNotPersistedError | None = None
        """The state could not reach its shared store (kept locally): applied, then halt."""

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
        """Keep the app's fair share of the pool busy with the phase's changes, settle each
        as it ends; return when all are settled (or, after a stop, when the calls in flight
        are)."""
        waiting = iter(phase)
        running: dict[Future[Settled | None], Change] = {}
        self._top_up(waiting, running)
        while running and not self.stopping():
            watch: set[Future[Any]] = {*running, self.pool.stop.future}
            done = wait(watch, return_when=FIRST_COMPLETED).done
            ended = [(running.pop(future), future) for future in done if future in running]
            self._top_up(waiting, running)  # the freed slots go to the next calls first
            for change, future in ended:
                self._settle(change, future)
        self._drain(running)

    def _top_up(
        self, waiting: Iterator[Change], running: dict[Future[Settled | None], Change]
    ) -> None:
        """Hand the pool the next changes until the app has its share in it (unless
        stopping)."""
        while not self.stopping() and len(running) < self.pool.share():
            change = next(waiting, None)
            if change is None:
                return
            try:
                running[self.pool.submit(self._call, change)] = change
            except RuntimeError:  # the pool is shut down: nobody will run it
                self.halted = True
                self._drain(running)
                raise

    def _call(self, change: Change) -> Settled | None:
        """On a worker: the API call (None: skipped, its turn came after a stop). A fatal
        error halts the app here, before this worker can take the app's next change."""
        if self.stopping():
            return None
        held = self.job.held.get(change.user_id)
        if held is not None and change.action != "delete":
            raise held
        try:
            return self.job.runner.run(change, self.job.payloads.get(change.user_id))
        except ProvisionerError as exc:
            if is_fatal(exc):
                self.halted = True
            raise

    def _drain(self, running: dict[Future[Settled | None], Change]) -> None:
        """Cancel what has not started; wait for and settle the calls in flight."""
        for future in running:
            future.cancel()
        while running:
            for future in wait(set(running), return_when=FIRST_COMPLETED).done:
                self._settle(running.pop(future), future)

    def _settle(self, change: Change, future: Future[Settled | None]) -> None:
        """Record and report one change whose call has ended (or was cancelled)."""
        if future.cancelled():
            return
        try:
            result = self._outcome(change, future)
            if result is not None:
                self._report(change, result)
        except BaseException as exc:  # a bug: stop this app, raise it once the calls are done
            self.halted = True
            self.bug = self.bug or exc

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

    def _report(self, change: Change, result: ChangeResult) -> None:
        self.results[self.positions[id(change)]] = result
        if self.pool.on_result is not None:
            self.pool.on_result(self.job.app, result)
