"""One state branch of one repository, shared by every app of this process.

The branch holds ``<app>.json`` (the state document), ``locks/<app>.json`` (the holder of
the app's lock, with a lease) and ``drift/<app>.json`` (what the last drift run saw, written
without the lock: :meth:`StateBranch.publish`). Every change is a commit on the last seen
tip, pushed with ``--force-with-lease`` on that tip: a compare-and-swap. A push rejected
because the branch moved (another app's commit, another runner) is rebuilt on the new tip
and retried, which is safe because each app's files are only written by the holder of its
lock, and every retry checks again that this run still holds each lock it writes under and
that nobody else wrote its state.

One worker thread does all the pushing, one push at a time: lock requests, state writes,
lease renewals, releases and published files that arrive while a push is in flight go
together in the next commit. So the number of pushes follows the run's duration and the push
latency, not the number of bots (nor, mostly, of apps). What a batch carries and changes is
in :mod:`provisioner.state.git.records`; this module runs it (threads, git).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from provisioner.errors import StateError
from provisioner.state.codec import MAX_STATE_BYTES
from provisioner.state.git.cli import GitError, GitRepository, access_hint, private_ref
from provisioner.state.git.lease import (
    DEFAULT_LEASE,
    locked_error,
    parse_record,
    record_bytes,
    stale_reason,
    with_expiry,
)
from provisioner.state.git.records import (
    Acquired,
    AcquireRequest,
    Batch,
    Contents,
    Grant,
    Held,
    Outcome,
    PendingWrite,
    Published,
    Stored,
    commit_message,
    lock_file,
    state_file,
)
from provisioner.state.model import LockHolder

_T = TypeVar("_T")

MAX_ATTEMPTS = 50
"""Pushes of one batch before giving up on a branch that keeps moving."""
WAIT = 900.0
"""Seconds a caller waits for the worker's answer (fetch + push, with retries)."""


class StateBranch:
    """``branch`` of ``remote`` in ``repo`` (see the module docstring)."""

    def __init__(
        self,
        repo: GitRepository,
        remote: str,
        branch: str,
        *,
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.remote = remote
        self.branch = branch
        self.where = f"git branch {branch} on {remote}"
        self.lease = lease
        self.clock = clock
        self.pushes = 0
        """Push attempts so far (the benchmark reports them)."""
        self._mutex = threading.Condition()
        self._git = threading.Lock()
        self._tip: str | None = None
        self._held: dict[str, Held] = {}
        self._queue = Batch()
        self._worker: threading.Thread | None = None
        self._seen_at = -1.0
        """When the tip was last known to be the remote's (monotonic; a fetch started then,
        or a push succeeded)."""
        self._pushed_blobs: dict[str, str | None] = {}
        """path -> blob id of the last successful push."""

    # --- the lock holder's side (through the worker) -----------------------------------

    def acquire(self, app: str, holder: LockHolder) -> Acquired:
        """Take ``app``'s lock; LockedError naming the live holder."""
        future: Future[Acquired] = Future()
        with self._mutex:
            self._queue.acquires.append(AcquireRequest(app, holder, future))
            self._start()
        return self._answer(future, f"taking the lock of app {app}")

    def stage(self, app: str, document: bytes, serial: int) -> StateError | None:
        """Queue ``document`` (serial ``serial``) as ``app``'s next state, pushed with the
        next batch; returns the error that stopped this app's pushes, if any."""
        with self._mutex:
            held = self._held[app]
            held.pending, held.generation = document, held.generation + 1
            held.serial = serial
            self._start()
            return held.error

    def error(self, app: str) -> StateError | None:
        with self._mutex:
            held = self._held.get(app)
            return held.error if held is not None else None

    def release(self, app: str) -> None:
        """Push what is pending for ``app`` and remove its lock record (StateError when that
        push fails: the lock record then stays, and so does this app's error)."""
        future: Future[None] = Future()
        with self._mutex:
            if app not in self._held:
                return
            self._queue.releases[app] = future
            self._start()
        self._answer(future, f"the final push of app {app}")

    def publish(self, path: str, content: bytes) -> None:
        """Write ``path`` outside any lock (the last writer wins) with the next push, which
        also carries whatever else is queued; StateError when that push fails."""
        future: Future[None] = Future()
        with self._mutex:
            queued = self._queue.published.setdefault(path, Published(content, []))
            queued.content = content
            queued.futures.append(future)
            self._start()
        self._answer(future, f"writing {path}")

    def _answer(self, future: Future[_T], doing: str) -> _T:
        """The worker's answer; StateError when it takes longer than :data:`WAIT`."""
        try:
            return future.result(timeout=WAIT)
        except FutureTimeout:
            raise StateError(
                f"{self.where}: {doing} took more than {WAIT:.0f} s",
                hint="check the network and the remote; re-run once it answers",
            ) from None

    # --- anyone's side (synchronous) --------------------------------------------------

    def read(self, paths: list[str], *, fresh_within: float = 0.0) -> tuple[str | None, Contents]:
        """The branch's tip and the (blob, content) of each path there, as fetched after
        this call began (or up to ``fresh_within`` seconds before): concurrent reads (one
        plan thread per app) share one fetch."""
        asked = time.monotonic() - fresh_within
        with self._git:
            tip = self._tip if self._seen_at > asked else self._fetch()
            return tip, self._contents(tip, paths)

    def swap(
        self,
        decide: Callable[[Contents], dict[str, bytes | None]],
        paths: list[str],
        message: str,
    ) -> None:
        """Compare-and-swap without the lock: ``decide`` sees the current (blob, content) of
        ``paths`` and returns the changes (raising to refuse); retried on a moved branch."""
        with self._git:
            for attempt in range(MAX_ATTEMPTS):
                tip = self._fetch()
                changes = decide(self._contents(tip, paths))
                if not changes:
                    return
                result = self._push(tip, changes, message)
                if result is None:
                    return
                if result != "stale":
                    raise StateError(f"{self.where}: the push was refused: {result}")
                _backoff(attempt)
        raise StateError(f"{self.where}: the branch kept moving; {MAX_ATTEMPTS} pushes refused")

    # --- the worker -------------------------------------------------------------------
    #
    # Who answers which Future. Callers wait on two kinds; stage() waits on none (a failed
    # push is kept in Held.error, which the next stage() and error() return). Each is
    # answered once, by the worker, for the batch that carries it:
    # - _next_batch answers none: it hands the queued requests to one batch, and ends the
    #   worker (returns None) only when nothing is queued or held, so nobody is left waiting.
    # - AcquireRequest.future (acquire): _settle, after the push or when there was nothing to
    #   push (the Acquired, or the LockedError naming who holds the lock); or _fail.
    # - Batch.releases[app] (release): _settle_held after the push (None once nothing is
    #   pending, or the StateError of a lost lock); when a write was staged during that final
    #   push, _settle_held queues it again instead and the next batch answers it; or _fail.
    # - Batch.published[path].futures (publish): _settle after the push; or _fail.
    # - _fail answers the whole batch with its StateError; _round calls it before letting
    #   any other exception through, and _answer stops waiting after WAIT anyway.

    def _start(self) -> None:
        """Wake the worker (start it if needed). Called with the mutex held."""
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._work, name=f"git-state-{self.branch}", daemon=True
            )
            self._worker.start()
        self._mutex.notify_all()

    def _work(self) -> None:
        while True:
            with self._mutex:
                batch = self._next_batch()
                if batch is None:
                    self._worker = None
                    return
            with self._git:
                self._round(batch)

    def _next_batch(self) -> Batch | None:
        """Wait (mutex held) for work: queued requests, pending writes, renewals due. None
        when nothing is held or queued any more."""
        while True:
            batch = self._queue
            for app, held in self._held.items():
                retrying = held.error is None or app in batch.releases  # the final push retries
                if held.pending is not None and retrying:
                    batch.writes[app] = PendingWrite(held.pending, held.generation, held.serial)
                if held.error is None and self.clock() >= held.renewed + self.lease / 3:
                    batch.renewals.add(app)
            if batch.has_work():
                self._queue = Batch()
                return batch
            if not self._held:
                return None
            soonest = min(held.renewed for held in self._held.values()) + self.lease / 3
            self._mutex.wait(timeout=max(0.05, min(soonest - self.clock(), 60.0)))

    def _round(self, batch: Batch) -> None:
        """Push one batch, rebuilding it on the new tip while the branch moves."""
        try:
            for attempt in range(MAX_ATTEMPTS):
                if self._tip is None or batch.acquires or attempt:
                    self._tip = self._fetch()
                outcome = self._evaluate(batch)
                if not outcome.changes:
                    self._settle(batch, outcome)
                    return
                result = self._push(self._tip, outcome.changes, commit_message(batch, outcome))
                if result is None:
                    self._settle(batch, outcome)
                    return
                if result != "stale":
                    self._fail(batch, f"the push was refused: {result}")
                    return
                _backoff(attempt)
            self._fail(batch, f"the branch kept moving; {MAX_ATTEMPTS} pushes were refused")
        except (GitError, OSError) as exc:
            self._fail(batch, getattr(exc, "detail", None) or str(exc))
        except BaseException as exc:  # pragma: no cover - never leave a caller waiting
            self._fail(batch, f"internal error ({type(exc).__name__})")
            raise

    def _evaluate(self, batch: Batch) -> Outcome:
        """What this batch changes on the current tip, checking every lock it relies on."""
        outcome = Outcome()
        apps = {request.app for request in batch.acquires} | batch.apps()
        paths = [path for app in sorted(apps) for path in (state_file(app), lock_file(app))]
        contents = self._contents(self._tip, paths)
        now = self.clock()
        for request in batch.acquires:
            self._evaluate_acquire(request.app, request.holder, contents, now, outcome)
        for app in sorted(batch.apps()):
            self._evaluate_held(app, batch, contents, now, outcome)
        outcome.changes.update({path: item.content for path, item in batch.published.items()})
        return outcome

    def _evaluate_acquire(
        self,
        app: str,
        holder: LockHolder,
        contents: Contents,
        now: float,
        outcome: Outcome,
    ) -> None:
        record = contents[lock_file(app)].content
        current = parse_record(record) if record is not None else None
        notices: list[str] = []
        if app in self._held or app in outcome.granted:
            taken_by = self._held[app].holder if app in self._held else outcome.granted[app].leased
            outcome.refused[app] = locked_error(app, taken_by)
            return
        if record is not None:
            why = stale_reason(current, now)
            if why is None:
                outcome.refused[app] = locked_error(app, current)
                return
            who = current.describe() if current is not None else "an unreadable lock record"
            notices.append(f"app {app}: took over the lock of {who} on {self.where}: {why}")
        leased = with_expiry(holder, now + self.lease)
        outcome.changes[lock_file(app)] = record_bytes(leased)
        stored = contents[state_file(app)]
        outcome.granted[app] = Grant(leased, Acquired(stored.blob, stored.content, notices))

    def _evaluate_held(
        self,
        app: str,
        batch: Batch,
        contents: Contents,
        now: float,
        outcome: Outcome,
    ) -> None:
        held = self._held[app]
        record = contents[lock_file(app)].content
        current = parse_record(record) if record is not None else None
        if current is None or current.token != held.holder.token:
            how = (
                f"it was taken over by {current.describe()}"
                if current is not None
                else "its record was removed from the branch"
            )
            outcome.lost[app] = StateError(
                f"{self.where}: this run lost the lock of app {app}: {how} while the run held"
                " it (its lease had expired, or `state unlock --force` was run)"
            )
            return
        if contents[state_file(app)].blob != held.blob:
            outcome.lost[app] = StateError(
                f"{self.where}: another run wrote the state of app {app} while this run held"
                " its lock"
            )
            return
        if app in batch.writes:
            outcome.changes[state_file(app)] = batch.writes[app].document
        if app in batch.releases:
            outcome.changes[lock_file(app)] = None
        elif app in batch.renewals:
            renewed = with_expiry(held.holder, now + self.lease)
            outcome.changes[lock_file(app)] = record_bytes(renewed)

    def _settle(self, batch: Batch, outcome: Outcome) -> None:
        """After a successful push (or nothing to push): answer everyone."""
        blobs = self._pushed_blobs if outcome.changes else {}
        now = self.clock()
        with self._mutex:
            for request in batch.acquires:
                app = request.app
                if app in outcome.refused:
                    request.future.set_exception(outcome.refused[app])
                    continue
                grant = outcome.granted[app]
                self._held[app] = Held(grant.leased, grant.acquired.blob, now)
                request.future.set_result(grant.acquired)
            for app in batch.apps():
                self._settle_held(app, batch, outcome, blobs, now)
            for published in batch.published.values():
                for future in published.futures:
                    future.set_result(None)

    def _settle_held(
        self,
        app: str,
        batch: Batch,
        outcome: Outcome,
        blobs: dict[str, str | None],
        now: float,
    ) -> None:
        held = self._held.get(app)
        if held is None:
            return
        future = batch.releases.get(app)
        if app in outcome.lost:
            held.error = outcome.lost[app]
            if future is not None:
                future.set_exception(held.error)
            return
        if app in batch.writes:
            held.blob = blobs.get(state_file(app), held.blob)
            if held.generation == batch.writes[app].generation:
                held.pending = None
        if lock_file(app) in outcome.changes:
            held.renewed = now
        if future is not None:
            if held.pending is None:
                held.error = None
                del self._held[app]
                future.set_result(None)
            else:  # a write arrived during the final push: push again
                self._queue.releases[app] = future

    def _fail(self, batch: Batch, reason: str) -> None:
        """A batch that could not be pushed: tell every caller; the writes stay pending."""
        with self._mutex:
            for request in batch.acquires:
                request.future.set_exception(
                    StateError(
                        f"{self.where}: cannot take the lock of app {request.app}: {reason}",
                        hint=access_hint(reason, self.branch, os.environ),
                    )
                )
            for app in batch.apps():
                held = self._held.get(app)
                if held is None:
                    continue
                held.error = StateError(f"{self.where}: {reason}")
                release = batch.releases.get(app)
                if release is not None:
                    release.set_exception(held.error)
            for path, published in batch.published.items():
                for future in published.futures:
                    future.set_exception(StateError(f"{self.where}: cannot write {path}: {reason}"))

    # --- helpers ----------------------------------------------------------------------

    def _fetch(self) -> str | None:
        started = time.monotonic()
        self._tip = self.repo.fetch(self.remote, self.branch)
        self._seen_at = started
        return self._tip

    def _contents(self, tip: str | None, paths: list[str]) -> Contents:
        ids = self.repo.blob_ids(tip, paths)
        present = sorted({blob for blob in ids.values() if blob is not None})
        blobs = self.repo.read_blobs(present, MAX_STATE_BYTES)
        return {path: Stored(blob, blobs[blob] if blob else None) for path, blob in ids.items()}

    def _push(self, tip: str | None, changes: dict[str, bytes | None], message: str) -> str | None:
        """Commit ``changes`` on ``tip`` and push it; None on success, else "stale" or the
        reason of the refusal."""
        contents = {path: data for path, data in changes.items() if data is not None}
        written = self.repo.write_blobs(contents)
        blobs = {path: written.get(path) for path in changes}
        commit = self.repo.commit(tip, blobs, message)
        self.pushes += 1
        result = self.repo.push(self.remote, commit, self.branch, tip)
        if result.outcome == "ok":
            self._tip, self._pushed_blobs = commit, blobs
            self._seen_at = time.monotonic()
            self.repo.update_ref(private_ref(self.remote, self.branch), commit)
            return None
        return "stale" if result.outcome == "stale" else result.detail


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * min(attempt + 1, 10)))
