"""A run's app lanes: at most ``size`` threads that take the apps' work from one queue.

A run over 1,000 apps must not hold 1,000 threads, HTTP connections and lock files: each app's
work (plan it; later, apply it) is a job queued here, in app order, and runs on one of at most
``size`` (--concurrency) lanes, so what a run holds open scales with --concurrency, not with
the number of apps. A lane starts with each job until there are ``size`` (so never more lanes
than jobs), are daemons (a read that never answers
does not keep the process alive: see :mod:`provisioner.apply.interrupts`) and end at
:meth:`Lanes.close`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

_Result = TypeVar("_Result")
_Job = tuple[Callable[[], object], "Future[object]"]


class Lanes:
    """At most ``size`` daemon threads running submitted jobs, first in, first out."""

    def __init__(self, size: int, name: str = "app") -> None:
        self.size = max(1, size)
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, job: Callable[[], _Result]) -> Future[_Result]:
        """Queue ``job``; its result (or exception) in the Future. Cancelling the Future
        before a lane takes the job skips it."""
        future: Future[_Result] = Future()
        with self._mutex:
            if self._closed:
                raise RuntimeError("the lanes are closed")
            self._jobs.put((job, future))  # type: ignore[arg-type]
            if len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def close(self) -> None:
        """Let every lane end once the queue is empty (jobs queued still run)."""
        with self._mutex:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to whoever waits for the future
                    future.set_exception(exc)
