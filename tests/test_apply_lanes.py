"""apply/lanes.py: at most ``size`` threads run the queued jobs, in order; results and errors
reach the futures; a job cancelled before its turn is skipped."""

from __future__ import annotations

import threading

import pytest

from provisioner.apply.lanes import Lanes


def test_at_most_size_jobs_run_at_once_in_the_order_queued() -> None:
    lanes = Lanes(3)
    running, peak, order = 0, 0, []
    mutex = threading.Lock()
    gate = threading.Event()

    def job(number: int) -> int:
        nonlocal running, peak
        with mutex:
            running += 1
            peak = max(peak, running)
            order.append(number)
        gate.wait(5)
        with mutex:
            running -= 1
        return number * 2

    futures = [lanes.submit(lambda n=n: job(n)) for n in range(20)]
    gate.set()
    assert [future.result(timeout=10) for future in futures] == [n * 2 for n in range(20)]
    lanes.close()
    assert peak == 3
    assert sorted(order[:3]) == [0, 1, 2] and sorted(order) == list(range(20))


def test_an_error_goes_to_the_future_and_a_cancelled_job_is_skipped() -> None:
    lanes = Lanes(1)
    gate = threading.Event()
    first = lanes.submit(lambda: gate.wait(5))
    ran: list[str] = []
    skipped = lanes.submit(lambda: ran.append("skipped"))
    assert skipped.cancel()
    failing = lanes.submit(lambda: 1 / 0)
    gate.set()
    assert first.result(timeout=10) is True
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)
    assert ran == []
    lanes.close()
    with pytest.raises(RuntimeError):
        lanes.submit(lambda: None)
