"""One run over several apps: plan them all, then let each approved app apply its plan.

`provisioner apply` and `provisioner plan` both plan through a :class:`Session`, so they read
state, connect and plan the same way; `plan` opens it with ``lock=False`` and never applies.

Each app (:class:`AppRun`) is two jobs on the session's lanes
(:class:`~provisioner.apply.lanes.Lanes`: at most :data:`APP_LANES_PER_SLOT` × ``concurrency``
threads, apps in order), so
the threads, HTTP connections and lock files a run holds scale with --concurrency, never with
the number of apps:

1. the plan job: read the state (apply only: refused, naming the holder, while another run
   holds the app's lock: :meth:`~provisioner.state.backend.StateBackend.read_when_free`,
   which takes no lock on git, where a lock is two commits) and, with refresh, query the
   live bots, plan (:func:`plan_app`), close the client; the plan goes to the main thread
   (a Future);
2. the main thread decides per app (safety rules, reviewed ids, confirmation: one app's
   refusal never stops another) and calls :meth:`Session.apply`;
3. the apply job (an app with the go and something to do): take the lock, read the
   state again and apply the plan; the API calls of all apps share one
   :class:`~provisioner.apply.executor.CallPool` of ``concurrency`` workers. The lock is not
   held between the two jobs (1,000 held file locks are 1,000 open files); instead the plan
   holds only for the state it was made against: :func:`apply_plan` refuses it, before any
   call, when another run wrote the app's state in between. Leaving the block releases the
   lock (a shared backend pushes what it has not pushed yet).

A Ctrl-C or SIGTERM while the main thread waits stops new calls: calls in flight finish and
are recorded, apps whose turn had not come report every change not attempted. Leaving the
session early (an exception, Ctrl-C while planning) tells every app not to go and waits for
every app applying; apps still planning are abandoned after
:data:`ABANDON_PLANNING_AFTER_SECONDS` (the lanes are daemon threads: their reads change
nothing), and plan jobs whose turn had not come do nothing.

Nothing here prints: results are values, and each change's result goes to ``on_result``.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from provisioner.apply.executor import CallPool, OnResult, apply_plan
from provisioner.apply.interrupts import StopSignal, result_of, result_through_stops
from provisioner.apply.lanes import Lanes
from provisioner.apply.recorder import StateRecorder
from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.connect import connect
from provisioner.errors import PlanError, ProvisionerError
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.rongcloud.models import BotPayload
from provisioner.state.backend import lock_waiting, read_waiting
from provisioner.state.backends import backend_for
from provisioner.state.holder import ci_run_url
from provisioner.state.model import RecordedApp

APPLY_COMMAND = "provisioner apply"
"""What the lock holder record names, unless the command names itself (`github apply`)."""
APP_LANES_PER_SLOT = 2
"""Apps in flight per --concurrency slot: while one app's lane takes its lock, reads its state
or waits for its key's rate limiter, another app keeps the call pool busy."""
ABANDON_PLANNING_AFTER_SECONDS = 1.0
"""After a stop, how long to wait for apps still planning before leaving them to their
(daemon) threads: their reads change nothing."""


class BotLister(Protocol):
    def query_bots(self) -> list[BotPayload]: ...


def plan_app(
    app: DesiredApp,
    env: Mapping[str, str],
    state: RecordedApp,
    client: BotLister | None,
    *,
    allow_empty: bool,
    check_secrets: bool = True,
) -> Plan:
    """The plan of one app against ``state``; with a ``client``, refreshed from the live bots;
    without ``check_secrets``, a secret this run does not have is not checked (see
    :func:`provisioner.plan.make_plan`)."""
    live = client.query_bots() if client is not None else None
    return make_plan(app, state, env, live, allow_empty=allow_empty, check_secrets=check_secrets)


@dataclass(frozen=True)
class Planned:
    """One app after planning: its plan, or the error that kept it from planning."""

    app: DesiredApp
    plan: Plan | None = None
    error: ProvisionerError | None = None


@dataclass(frozen=True)
class Selection:
    """What an app applies when a review decides per bot: ``plan``, its plan with only the
    changes to carry out (same lineage and serial), and ``record_only``, userId → why that
    change is recorded without a call."""

    plan: Plan
    record_only: Mapping[str, str]


@dataclass(frozen=True)
class Applied:
    """One app at the end of the run: its apply result when it made calls (or meant to), or
    the error that stopped it after planning."""

    app: str
    result: ApplyResult | None = None
    error: ProvisionerError | None = None


class AppRun:
    """One app of a session: its plan job, the decision, then its apply job (each a job of
    the session's :class:`~provisioner.apply.lanes.Lanes`)."""

    def __init__(self, app: DesiredApp, session: Session) -> None:
        self.app = app
        self.session = session
        self.planned: Future[Plan] = Future()
        self.decision: Future[bool] = Future()
        self.finished: Future[ApplyResult | None] = Future()
        self.applying = False
        self.locked = False
        """Set once the apply job holds the lock: an error before it (a lock refused) is the
        app's, with no call made (exit 1); after it, the first change's (exit 4)."""
        self.stored_keys: frozenset[str] = frozenset()
        """The Dify keys the refresh saw on the server: the apply's client redacts them too."""
        self.unrecorded: RecordedApp | None = None
        """The fresh state the plan was made against, when nothing was recorded: the apply
        starts from it (same lineage and salt) if nothing is recorded by then either."""
        self._mutex = threading.Lock()
        self._awaited = 2
        """The plan and the decision still to come (under the mutex): whichever comes last
        queues the apply job, exactly once."""

    def start(self) -> None:
        """Queue the plan job; :attr:`planned` holds its plan or error."""
        self.session.lanes.submit(self._plan_job)

    def decide(self, go: bool) -> None:
        """Let the app apply its plan (``go``) or end without a call (the first call wins)."""
        with self._mutex:
            if self.decision.done():
                return
            self.decision.set_result(go)
            last = self._arrived()
        if last:
            self._after_plan()

    def _plan_job(self) -> None:
        """Read (apply only: refused while the lock is held), connect for the refresh,
        plan; then, if the decision came first, end. A job whose turn comes after a stop
        does nothing."""
        try:
            if self.session.stop.is_set():
                raise PlanError(f"app {self.app.name} was not planned: the run stopped")
            self.planned.set_result(self._plan())
        except BaseException as exc:
            self.planned.set_exception(exc)
        with self._mutex:
            last = self._arrived()
        if last:
            self._after_plan()

    def _arrived(self) -> bool:
        """Count the plan or the decision in (mutex held); True for the last of the two. Not
        ``planned.done()``: the plan is set before this job takes the mutex, so a decision
        in between would see it done and both would queue the apply job."""
        self._awaited -= 1
        return self._awaited == 0

    def _plan(self) -> Plan:
        session, app = self.session, self.app
        backend = backend_for(app, env=session.env, read_only=not session.lock)
        with session.plan_slots, ExitStack() as clients:
            recorded = (
                read_waiting(backend, session.command, session.lock_timeout)
                if session.lock
                else backend.read_recorded()
            )
            state = recorded if recorded is not None else RecordedApp.fresh(app.name)
            self.unrecorded = None if recorded is not None else state
            client = clients.enter_context(connect(app, session.env)) if session.refresh else None
            plan = plan_app(
                app,
                session.env,
                state,
                client,
                allow_empty=session.allow_empty,
                check_secrets=session.lock,
            )
            self.stored_keys = client.stored_keys() if client is not None else frozenset()
            return plan

    def _after_plan(self) -> None:
        """Both the plan and the decision are known: queue the apply job, or end."""
        plan = self._to_apply()
        if plan is None:
            self.finished.set_result(None)
            return
        self.applying = True
        job = self.session.lanes.submit(partial(self._apply_job, plan))
        job.add_done_callback(partial(_pass_on, self.finished))

    def _to_apply(self) -> Plan | None:
        """The plan the app applies (its selection, with a review per bot), or None."""
        if not self.session.lock or not self.decision.result() or self.planned.exception():
            return None
        selection = self.session.selections.get(self.app.name)  # set before the decision
        plan = selection.plan if selection is not None else self.planned.result()
        return None if plan.is_empty else plan

    def _apply_job(self, plan: Plan) -> ApplyResult:
        """Lock, read the state again and apply: the plan holds only for the state it
        was made against (:func:`apply_plan` refuses it otherwise, before any call). After a
        stop, no lock and no call: every change not attempted."""
        if self.session.stop.is_set():
            return not_attempted(plan)
        session, app = self.session, self.app
        backend = backend_for(app, env=session.env)
        result: ApplyResult | None = None
        try:
            lock = lock_waiting(backend, session.command, session.lock_timeout)
            with lock, ExitStack() as clients:
                self.locked = True
                recorded = backend.read_recorded()
                state = recorded if recorded is not None else self.unrecorded
                state = state if state is not None else RecordedApp.fresh(app.name)
                client = clients.enter_context(connect(app, session.env))
                client.stored_keys(also=self.stored_keys)
                recorder = StateRecorder(
                    backend,
                    state,
                    run=ci_run_url(session.env),
                    plan_id=session.carries.get(app.name, plan.id),
                )
                held = session.held.get(app.name)
                selection = session.selections.get(app.name)
                record_only = selection.record_only if selection is not None else None
                result = apply_plan(
                    plan, app, session.env, client, recorder, session.pool, held, record_only
                )
        except ProvisionerError as exc:
            if result is None:
                raise
            # releasing the lock failed after the calls: what they did is not persisted
            return replace(result, persist_error=result.persist_error or exc)
        return result


class Session:
    """Every app of one run, with the shared lanes, call pool and stop signal. A context
    manager: entering queues every app's plan job, leaving stops and waits (see the module
    docstring).

    ``lock=False`` plans without taking any lock and never applies (`provisioner plan`); it
    then needs no secret either: a secret the environment does not hold is not checked
    (listed in the plan's ``unchecked``). An apply checks every one.
    ``held``: app → bot userId → why the bot gets no call (``apply --check``).
    ``lock_timeout``: how long to wait for an app's lock another run holds.
    """

    def __init__(
        self,
        apps: Sequence[DesiredApp],
        env: Mapping[str, str],
        *,
        refresh: bool,
        allow_empty: bool,
        concurrency: int,
        lock: bool = True,
        command: str = APPLY_COMMAND,
        held: Mapping[str, Mapping[str, ProvisionerError]] | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.env = env
        self.lock_timeout = lock_timeout
        """Seconds to wait for a held lock (``--lock-timeout``); None: fail at once."""
        self.held = held or {}
        self.carries: Mapping[str, str] = {}
        """app → the id of the reviewed plan its apply carries on (default: its own)."""
        self.selections: Mapping[str, Selection] = {}
        """app → the part of its plan it applies, when a review decides per bot (default:
        the whole plan). Like :attr:`carries`, set by :meth:`apply` before any app is let
        go: the apply jobs read both."""
        self.refresh = refresh
        self.allow_empty = allow_empty
        self.lock = lock
        self.command = command
        self.stop = StopSignal()
        self.lanes = Lanes(APP_LANES_PER_SLOT * max(1, concurrency))
        self.plan_slots = threading.BoundedSemaphore(max(1, concurrency))
        """At most ``concurrency`` apps plan at once (with refresh: calls in flight)."""
        self.pool = CallPool(concurrency, stop=self.stop)
        self.runs = [AppRun(app, self) for app in apps]

    def __enter__(self) -> Session:
        for run in self.runs:
            run.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for run in self.runs:
            run.decide(False)
        self.stop.set("leaving")
        deadline = time.monotonic() + ABANDON_PLANNING_AFTER_SECONDS
        for run in self.runs:
            if run.applying:
                _wait_quietly(run.finished)
            else:
                _wait_quietly(run.finished, timeout=max(0.0, deadline - time.monotonic()))
        self.lanes.close()
        self.pool.shutdown()

    def plans(self) -> list[Planned]:
        """Wait for every app's plan (or planning error), in app order. Any exception that
        is not a ProvisionerError (a bug, Ctrl-C) is raised at once."""
        planned: list[Planned] = []
        for run in self.runs:
            try:
                planned.append(Planned(run.app, plan=result_of(run.planned)))
            except ProvisionerError as exc:
                planned.append(Planned(run.app, error=exc))
        return planned

    def apply(
        self,
        go: Callable[[str], bool],
        on_result: OnResult,
        carries: Mapping[str, str] | None = None,
        selections: Mapping[str, Selection] | None = None,
    ) -> list[Applied]:
        """Let every app for which ``go(app name)`` holds apply; wait (through Ctrl-C and
        SIGTERM, which stop new calls) for every app, in app order. ``on_result(app name,
        result)`` is called from the app threads as each change ends. ``carries``: app →
        the reviewed plan id its writes are stamped with (``last_plan``), when the apply
        carries on a reviewed plan whose first apply stopped part way. ``selections``: app →
        the part of its plan it applies (a review per bot)."""
        self.pool.on_result = on_result
        self.carries = dict(carries or {})
        self.selections = dict(selections or {})
        for run in self.runs:
            run.decide(run.planned.done() and not run.planned.exception() and go(run.app.name))
        with _frozen_heap():
            return [self._outcome(run) for run in self.runs]

    def _outcome(self, run: AppRun) -> Applied:
        name = run.app.name
        if run.planned.exception() is not None:
            return Applied(name)
        try:
            return Applied(name, result=result_through_stops(run.finished, self.stop))
        except ProvisionerError as exc:
            plan = run.planned.result()
            selection = self.selections.get(name)
            plan = selection.plan if selection is not None else plan
            if run.decision.result() and not plan.is_empty and run.locked:
                return Applied(name, result=unapplied(plan, exc))
            return Applied(name, error=exc)


def plan_apps(
    apps: Sequence[DesiredApp],
    env: Mapping[str, str],
    *,
    refresh: bool,
    allow_empty: bool,
    concurrency: int,
) -> list[Planned]:
    """Plan every app without a lock (`provisioner plan`), in parallel: the same path as an
    apply's planning. Results in app order; a Ctrl-C raises KeyboardInterrupt at once."""
    with Session(
        apps, env, refresh=refresh, allow_empty=allow_empty, concurrency=concurrency, lock=False
    ) as session:
        return session.plans()


def unapplied(plan: Plan, error: ProvisionerError) -> ApplyResult:
    """The result of an app that failed before its first call (e.g. it could not connect):
    the first change failed with ``error``, the rest not attempted."""
    first, *rest = plan.changes
    return ApplyResult(
        plan.app,
        plan.id,
        (
            ChangeResult(first.action, first.user_id, "failed", error=error),
            *(ChangeResult(change.action, change.user_id, "not_attempted") for change in rest),
        ),
    )


def not_attempted(plan: Plan) -> ApplyResult:
    """The result of an app whose turn to apply came after a stop: no change attempted."""
    changes = tuple(
        ChangeResult(each.action, each.user_id, "not_attempted") for each in plan.changes
    )
    return ApplyResult(plan.app, plan.id, changes, interrupted=True)


def _pass_on(target: Future[ApplyResult | None], source: Future[ApplyResult]) -> None:
    """Copy the outcome of the apply job ``source`` to the app's ``target``."""
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def _wait_quietly(future: Future[ApplyResult | None], timeout: float | None = None) -> None:
    """Wait for an app thread on the way out; its result or error was taken, or no longer
    matters. A Ctrl-C here does not abandon threads that are applying."""
    while True:
        try:
            future.exception(timeout=timeout)
            return
        except TimeoutError:
            return
        except KeyboardInterrupt:
            if timeout is not None:
                return


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """While the apps apply, keep the objects that exist now (manifests, models, plans: they
    live until the run ends) out of the cyclic garbage collector's way. Every full collection
    walked all of them again, holding the GIL for tens of milliseconds while the answers that
    arrived waited for it. Leaves the collector alone if someone else froze objects first."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
