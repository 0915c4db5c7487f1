"""The per-app-key rate limiter: its rates, the process-wide registry, and its effect."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from provisioner.errors import ConfigError
from provisioner.rongcloud.ratelimit import (
    JITTER_MARGIN_MS,
    RATE_LIMITERS,
    AppRateLimiter,
    RateLimiterRegistry,
    rates_for,
)


def shape(rate: float) -> list[tuple[int, int]]:
    return [(r.limit, r.interval) for r in rates_for(rate)]


def test_rates_keep_each_second_under_the_limit_with_a_margin() -> None:
    assert shape(100) == [(10, 110), (100, 1000 + JITTER_MARGIN_MS)]
    assert shape(50) == [(5, 110), (50, 1100)]
    assert shape(2.5) == [(1, 450), (2, 800 + JITTER_MARGIN_MS)]
    assert shape(1) == [(1, 1100)]
    assert shape(0.5) == [(1, 2100)]


@pytest.mark.parametrize("rate", [0, -1, 100.5, float("nan"), float("inf")])
def test_out_of_range_rates_are_refused(rate: float) -> None:
    with pytest.raises(ConfigError) as caught:
        rates_for(rate)
    assert (
        caught.value.hint == "use a number above 0 and at most 100 (RongCloud's documented limit)"
    )


def test_registry_shares_one_limiter_per_app_key_and_latest_rate_wins() -> None:
    registry = RateLimiterRegistry()
    first = registry.configure("k1", 20)
    assert registry.configure("k1", 20) is first
    assert registry.get("k1") is first
    assert registry.configure("k2", 20) is not first
    replaced = registry.configure("k1", 30)
    assert replaced is not first and replaced.rate == 30
    assert registry.get("k1") is replaced
    assert registry.get("k-new").rate == 50


def test_limiter_spreads_concurrent_callers_under_the_rate() -> None:
    limiter = AppRateLimiter(f"k-{uuid.uuid4().hex}", 5)
    stamps: list[float] = []
    lock = threading.Lock()

    def call_twice() -> None:
        for _ in range(2):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=call_twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()
    stamps.sort()
    assert len(stamps) == 8
    # No one-second window (nor a fifth of one) holds more calls than the rate allows.
    assert max(sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps) <= 5
    assert max(sum(1 for s in stamps if t <= s < t + 0.2) for t in stamps) <= 1


def test_process_registry_is_what_clients_use() -> None:
    from provisioner.rongcloud import RongCloudClient

    key = f"k-{uuid.uuid4().hex}"
    with RongCloudClient(app_key=key, app_secret="s", hosts=["https://a"], rate_limit=7):
        assert RATE_LIMITERS.get(key).rate == 7
