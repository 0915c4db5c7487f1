"""Keeping the main thread responsive to Ctrl-C while other threads do the work.

Python raises KeyboardInterrupt in the main thread only, between two of its bytecodes. A main
thread blocked without a timeout (``future.result()``, ``Condition.wait()``) wakes up for a
SIGINT only when the kernel happens to deliver the signal to that very thread; delivered to
another thread of the process (it happens under load), the Ctrl-C is noticed when the wait
ends, which for an apply can be after the last call. Waiting in short slices bounds that.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TypeVar

MAIN_THREAD_POLL_SECONDS = 0.05
"""How often a main thread that waits for other threads wakes up to let a Ctrl-C through."""

_Result = TypeVar("_Result")


def result_of(future: Future[_Result]) -> _Result:
    """``future.result()``, waking every :data:`MAIN_THREAD_POLL_SECONDS` so that a Ctrl-C
    raises KeyboardInterrupt here promptly."""
    while True:
        try:
            return future.result(timeout=MAIN_THREAD_POLL_SECONDS)
        except TimeoutError:
            continue
