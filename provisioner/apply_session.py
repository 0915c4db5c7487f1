"""One `provisioner apply` run over several apps: plan them all, then apply them all.

Threading model. Each app runs in its own thread (:class:`AppRun`) for its whole life:

1. take the app's state lock (held to the end, so the state cannot change between the plan
   that was shown and the apply);
2. plan: read the state and, with refresh, query the live bots (at most ``concurrency`` apps
   query at once);
3. hand the plan to the main thread (a :class:`~concurrent.futures.Future`), then wait for the
   go;
4. on the go, apply the plan; the API calls of all apps share one bounded pool of
   ``concurrency`` workers. Without the go (declined, refused, or an error elsewhere), or with
   nothing to do, make no call;
5. release the lock.

The main thread opens an :class:`ApplySession`, takes every plan from :meth:`ApplySession.plans`,
decides (safety rules, :func:`check_reviewed`, confirmation), and calls
:meth:`ApplySession.apply`, which lets every app go at once and waits for the results. Ctrl-C
while waiting sets the interrupt flag: no new call starts, calls in flight finish and are
recorded. Leaving the session without :meth:`ApplySession.apply` tells every app not to go, and
always waits for every thread and the call pool.

Nothing here prints: planning errors are returned as (app name, error) pairs, and each change's
result goes to the ``on_result`` callback given to :meth:`ApplySession.apply`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from provisioner.apply import ApplyResult, ChangeResult, apply_plan, new_pool
from provisioner.errors import PlanError, ProvisionerError
from provisioner.interrupts import result_of
from provisioner.models import DesiredApp
from provisioner.plan import Plan, make_plan
from provisioner.state import backend_for
from provisioner.workspace import connect

AppError = tuple[str, ProvisionerError]
"""An app's name and the error that stopped it."""


class AppRun:
    """One app, in its own thread: lock, plan, wait for the decision, apply, unlock."""

    def __init__(self, app: DesiredApp, session: ApplySession) -> None:
        self.app = app
        self.session = session
        self.planned: Future[Plan] = Future()
        self._decided = threading.Event()
        self._go = False

    def decide(self, go: bool) -> None:
        """Let the app apply its plan (``go``) or end without a call."""
        self._go = go
        self._decided.set()

    def __call__(self) -> ApplyResult | None:
        """The thread's body: the apply's result, or None when the app made no call. An error
        before the plan is set on :attr:`planned` instead of raised."""
        try:
            return self._run()
        except BaseException as exc:
            if not self.planned.done():
                self.planned.set_exception(exc)
                return None
            raise

    def _run(self) -> ApplyResult | None:
        session, app = self.session, self.app
        backend = backend_for(app)
        with ExitStack() as stack:
            stack.enter_context(backend.lock("provisioner apply"))
            state = backend.read()
            with session.plan_slots:
                client = stack.enter_context(connect(app, session.env)) if session.refresh else None
                live = client.query_bots() if client is not None else None
            plan = make_plan(app, state, session.env, live, allow_empty=session.allow_empty)
            self.planned.set_result(plan)
            self._decided.wait()
            if not self._go or plan.is_empty:
                return None
            if client is None:
                client = stack.enter_context(connect(app, session.env))
            return apply_plan(
                plan,
                app,
                session.env,
                client,
                backend,
                state,
                session.pool,
                stop=session.interrupt,
                on_result=session.on_result,
            )


class ApplySession:
    """Every app of one `apply` run, with the shared call pool and interrupt flag.

    A context manager: entering starts one thread per app, leaving stops and joins them all.
    """

    def __init__(
        self,
        apps: Sequence[DesiredApp],
        env: Mapping[str, str],
        *,
        refresh: bool,
        allow_empty: bool,
        concurrency: int,
    ) -> None:
        self.env = env
        self.refresh = refresh
        self.allow_empty = allow_empty
        self.interrupt = threading.Event()
        self.plan_slots = threading.BoundedSemaphore(concurrency)
        self.pool = new_pool(concurrency)
        self.on_result: Callable[[str, ChangeResult], None] | None = None
        self.runs = [AppRun(app, self) for app in apps]
        self._threads = ThreadPoolExecutor(
            max_workers=max(1, len(self.runs)), thread_name_prefix="app"
        )
        self._futures: list[Future[ApplyResult | None]] = []

    def __enter__(self) -> ApplySession:
        self._futures = [self._threads.submit(run) for run in self.runs]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for run in self.runs:
            run.decide(False)
        self.interrupt.set()
        self._threads.shutdown(wait=True)
        self.pool.shutdown()

    def plans(self) -> tuple[list[Plan], list[AppError]]:
        """Wait for every app's plan: the plans of the apps that planned, and the planning
        errors of the others, both in app order. Any other exception is raised at once."""
        plans: list[Plan] = []
        errors: list[AppError] = []
        for run in self.runs:
            try:
                plans.append(result_of(run.planned))
            except ProvisionerError as exc:
                errors.append((run.app.name, exc))
        return plans, errors

    def apply(self, on_result: Callable[[str, ChangeResult], None]) -> list[ApplyResult]:
        """Let every app go; wait (through Ctrl-C, which stops new calls) for the results of
        the apps with changes, in app order. ``on_result(app name, result)`` is called from
        the call threads as each change ends."""
        self.on_result = on_result
        for run in self.runs:
            run.decide(True)
        results: list[ApplyResult] = []
        for run, future in zip(self.runs, self._futures, strict=True):
            while True:
                try:
                    result = result_of(future)
                    break
                except KeyboardInterrupt:
                    self.interrupt.set()
                except ProvisionerError as exc:
                    result = unapplied(run.planned.result(), exc)
                    break
            if result is not None:
                results.append(result)
        return results


def unapplied(plan: Plan, error: Exception) -> ApplyResult:
    """The result of an app that failed before its first call (e.g. it could not connect):
    the first change failed with ``error`` (kept if a ProvisionerError), the rest not attempted."""
    failure = error if isinstance(error, ProvisionerError) else None
    first, *rest = plan.changes
    return ApplyResult(
        plan.app,
        plan.id,
        (
            ChangeResult(first.action, first.user_id, "failed", error=failure),
            *(ChangeResult(change.action, change.user_id, "not_attempted") for change in rest),
        ),
    )


def check_reviewed(plans: Sequence[Plan], reviewed: Mapping[str, str], source: Path | None) -> None:
    """Raise PlanError unless every plan's id is the reviewed id of its app (``reviewed``:
    app name → plan id, read from ``source`` when it came from a plan file)."""
    where = f" in {source}" if source is not None else ""
    for plan in plans:
        expected = reviewed.get(plan.app)
        if expected is None:
            raise PlanError(
                f"no reviewed plan id for app {plan.app}{where}",
                hint="run `provisioner plan` for this app, review it, and pass its plan id",
            )
        if expected != plan.id:
            raise PlanError(
                f"the plan for app {plan.app} is not the reviewed one: reviewed plan id"
                f" {expected}, current plan id {plan.id}",
                hint="the manifests, the state or the live bots changed since the plan was made;"
                " re-run `provisioner plan`, review it, and apply the new plan",
            )
