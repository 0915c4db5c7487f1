"""One run over several apps: plan them all, then let each approved app apply its plan.

`provisioner apply` and `provisioner plan` both plan through a :class:`Session`, so they read
state, connect and plan the same way; `plan` opens it with ``lock=False`` and never applies.

Each app runs in its own thread (:class:`AppRun`) for its whole life:

1. take the app's state lock (apply only; held to the end, so the state cannot change
   between the plan that was shown and the apply);
2. plan: read the state and, with refresh, query the live bots (at most ``concurrency`` apps
   plan at once), through :func:`plan_app`;
3. hand the plan to the main thread (a Future), then wait for its decision (apply only);
4. on the go, apply the plan; the API calls of all apps share one
   :class:`~provisioner.apply.executor.CallPool` of ``concurrency`` workers. Without the go
   (refused, declined, or nothing to do), make no call;
5. release the lock (a shared backend pushes what it has not pushed yet).

The main thread opens the session, takes every app's plan or planning error from
:meth:`Session.plans`, decides per app (safety rules, reviewed ids, confirmation: one app's
refusal never stops another), and calls :meth:`Session.apply`, which lets the approved apps go
and waits for every app. A Ctrl-C or SIGTERM while it waits stops new calls; calls in flight
finish and are recorded. Leaving the session early (an exception, Ctrl-C while planning) tells
every app not to go and waits for every thread, except those still planning: a read that never
answers is abandoned (their threads are daemons).

Nothing here prints: results are values, and each change's result goes to ``on_result``.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Protocol

from provisioner.apply.executor import CallPool, OnResult, apply_plan
from provisioner.apply.interrupts import StopSignal, in_thread, result_of, result_through_stops
from provisioner.apply.recorder import StateRecorder
from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.connect import connect
from provisioner.errors import ProvisionerError
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.rongcloud.models import BotPayload
from provisioner.state.backend import StateBackend, lock_waiting
from provisioner.state.backends import backend_for
from provisioner.state.holder import ci_run_url
from provisioner.state.model import RecordedApp

APPLY_COMMAND = "provisioner apply"
"""What the lock holder record names, unless the command names itself (`github apply`)."""
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
    """One app, in its own thread: lock, plan, wait for the decision, apply, unlock."""

    def __init__(self, app: DesiredApp, session: Session) -> None:
        self.app = app
        self.session = session
        self.planned: Future[Plan] = Future()
        self.decision: Future[bool] = Future()
        self.finished: Future[ApplyResult | None] = Future()
        self.applying = False

    def start(self) -> None:
        """Run in a daemon thread (see the module docstring); :attr:`finished` ends it."""
        self.finished = in_thread(self, f"app {self.app.name}", daemon=True)

    def decide(self, go: bool) -> None:
        """Let the app apply its plan (``go``) or end without a call (the first call wins)."""
        if not self.decision.done():
            self.decision.set_result(go)

    def __call__(self) -> ApplyResult | None:
        """The thread's body: the apply's result, or None when the app made no call. An error
        before the plan is set on :attr:`planned` instead of raised."""
        try:
            return self._locked_run()
        except BaseException as exc:
            if not self.planned.done():
                self.planned.set_exception(exc)
                return None
            raise

    def _locked_run(self) -> ApplyResult | None:
        session = self.session
        backend = backend_for(self.app, env=session.env, read_only=not session.lock)
        result: ApplyResult | None = None
        try:
            lock = (
                lock_waiting(backend, session.command, session.lock_timeout)
                if session.lock
                else nullcontext()
            )
            with lock, ExitStack() as clients:
                result = self._plan_then_apply(backend, clients)
        except ProvisionerError as exc:
            if result is None:
                raise
            # releasing the lock failed after the calls: what they did is not persisted
            return replace(result, persist_error=result.persist_error or exc)
        return result

    def _plan_then_apply(self, backend: StateBackend, clients: ExitStack) -> ApplyResult | None:
        session, app = self.session, self.app
        with session.plan_slots:
            state = backend.read()
            client = clients.enter_context(connect(app, session.env)) if session.refresh else None
            plan = plan_app(
                app,
                session.env,
                state,
                client,
                allow_empty=session.allow_empty,
                check_secrets=session.lock,
            )
        self.planned.set_result(plan)
        if not session.lock or not self.decision.result():
            return None
        selection = session.selections.get(app.name)  # set before the decision
        if selection is not None:
            plan = selection.plan
        if plan.is_empty:
            return None
        self.applying = True
        if client is None:
            client = clients.enter_context(connect(app, session.env))
        recorder = StateRecorder(
            backend,
            state,
            run=ci_run_url(session.env),
            plan_id=session.carries.get(app.name, plan.id),
        )
        held = session.held.get(app.name)
        record_only = selection.record_only if selection is not None else None
        return apply_plan(plan, app, session.env, client, recorder, session.pool, held, record_only)


class Session:
    """Every app of one run, with the shared call pool and stop signal. A context manager:
    entering starts one thread per app, leaving stops and joins them (see the module doc).

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
        go: the app threads read both only after their decision."""
        self.refresh = refresh
        self.allow_empty = allow_empty
        self.lock = lock
        self.command = command
        self.stop = StopSignal()
        self.plan_slots = threading.BoundedSemaphore(max(1, concurrency))
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
        for run in self.runs:
            if run.planned.done() or run.applying:
                _wait_quietly(run.finished)
            else:
                _wait_quietly(run.finished, timeout=ABANDON_PLANNING_AFTER_SECONDS)
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
            if run.decision.result() and not plan.is_empty:
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
