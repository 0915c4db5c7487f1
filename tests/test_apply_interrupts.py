"""The main thread's waits let a Ctrl-C through even when the signal reaches another thread."""

from __future__ import annotations

import _thread
import threading
from concurrent.futures import Future

import pytest

from provisioner.apply.interrupts import result_of


def test_returns_the_result_once_it_is_there() -> None:
    future: Future[str] = Future()
    threading.Timer(0.1, future.set_result, args=("done",)).start()
    assert result_of(future) == "done"


def test_raises_the_error_of_the_future() -> None:
    future: Future[str] = Future()
    future.set_exception(ValueError("broken"))
    with pytest.raises(ValueError, match="broken"):
        result_of(future)


def test_a_ctrl_c_noticed_by_another_thread_interrupts_the_wait() -> None:
    # interrupt_main() marks SIGINT as received without waking the main thread, as a signal
    # delivered to another thread does: a plain future.result() would sleep through it.
    future: Future[str] = Future()
    threading.Timer(0.1, _thread.interrupt_main).start()
    too_late = threading.Timer(10, future.set_result, args=("finished first",))
    too_late.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            result_of(future)
    finally:
        too_late.cancel()
