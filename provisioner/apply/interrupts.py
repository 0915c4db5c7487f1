"""Stopping a run cleanly: Ctrl-C and SIGTERM, a stop signal threads can wait on, and waits
that let the main thread notice a signal.

Python raises KeyboardInterrupt in the main thread only, between two of its bytecodes. A main
thread blocked without a timeout (``future.result()``) wakes up for a SIGINT only when the
kernel happens to deliver the signal to that very thread; delivered to another thread (it
happens under load), the Ctrl-C is noticed when the wait ends, which for an apply can be after
the last call. The main thread therefore waits in short slices.

SIGTERM (what a CI runner sends to cancel a job) is turned into :class:`Terminated`, a
KeyboardInterrupt, while a command runs: it stops a run exactly like Ctrl-C (calls in flight
finish and are recorded, locks are released), and the command exits 143 instead of 130.

Threads that only read (planning, refresh) run as daemon threads (:func:`in_thread`): a stop
does not wait for a read that never answers; the process may exit under them. Work that
writes never runs in the main thread: the main thread waits for it
(:func:`result_through_stops`), and a stop reaches it as a :class:`StopSignal`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

MAIN_THREAD_POLL_SECONDS = 0.05
"""How often a main thread that waits for other threads wakes up to let a Ctrl-C through."""

_Result = TypeVar("_Result")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C."""


class StopSignal:
    """Set once to stop a run (Ctrl-C, SIGTERM, or a caller's decision); a Future that
    :func:`concurrent.futures.wait` can wait on together with the calls."""

    def __init__(self) -> None:
        self.future: Future[str] = Future()
        self._lock = threading.Lock()

    def set(self, reason: str = "interrupted") -> None:
        with self._lock:
            if not self.future.done():
                self.future.set_result(reason)

    def is_set(self) -> bool:
        return self.future.done()

    @property
    def reason(self) -> str | None:
        return self.future.result() if self.future.done() else None


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def result_of(future: Future[_Result]) -> _Result:
    """``future.result()``, waking every :data:`MAIN_THREAD_POLL_SECONDS` so that a Ctrl-C
    raises KeyboardInterrupt here promptly."""
    while True:
        try:
            return future.result(timeout=MAIN_THREAD_POLL_SECONDS)
        except TimeoutError:
            continue


def in_thread(function: Callable[[], _Result], name: str, *, daemon: bool) -> Future[_Result]:
    """Run ``function`` in a new thread; its result (or exception) in the Future. A daemon
    thread does not keep the process alive: only for work that may be abandoned (reads)."""
    thread, future = _thread_for(function, name, daemon=daemon)
    thread.start()
    return future


def stop_reason(interrupt: KeyboardInterrupt) -> str:
    return "terminated" if isinstance(interrupt, Terminated) else "interrupted"


def run_through_stops(function: Callable[[], _Result], stop: StopSignal, name: str) -> _Result:
    """Run ``function`` in a new (non-daemon) thread and wait for its result: a Ctrl-C or
    SIGTERM meanwhile, even while the thread is being started, sets ``stop`` and the wait
    goes on (``function`` sees the stop and ends early), so a second Ctrl-C is never needed
    and never abandons the work."""
    thread, future = _thread_for(function, name, daemon=False)
    started = False
    while True:
        try:
            if not started:
                started = True
                thread.start()
            return result_of(future)
        except KeyboardInterrupt as exc:
            stop.set(stop_reason(exc))


def result_through_stops(future: Future[_Result], stop: StopSignal) -> _Result:
    """``future``'s result; a Ctrl-C or SIGTERM meanwhile sets ``stop`` and the wait goes on."""
    while True:
        try:
            return result_of(future)
        except KeyboardInterrupt as exc:
            stop.set(stop_reason(exc))


def _thread_for(
    function: Callable[[], _Result], name: str, *, daemon: bool
) -> tuple[threading.Thread, Future[_Result]]:
    future: Future[_Result] = Future()

    def body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function())
        except BaseException as exc:  # handed to whoever waits for the future
            future.set_exception(exc)

    return threading.Thread(target=body, name=name, daemon=daemon), future


@contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`Terminated`."""
    if not on_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
