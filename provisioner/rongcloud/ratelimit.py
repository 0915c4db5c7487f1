"""One client-side rate limiter per app key, shared by every client and thread in the process.

RongCloud allows 100 calls per second per app key (reference §7.3); the provisioner defaults
to 50 and refuses anything above 100. The limiter is pyrate-limiter's sliding-window log,
blocking until a call may go. Two details keep the server's own count under the configured
rate even though a request reaches the server a little after it leaves the limiter:

* the window is ``1 s + JITTER_MARGIN_MS``, so calls whose travel time varies by up to the
  margin still land at most ``rate`` in any one second at the server;
* for rates of 2/s and more, a second, tenth-of-a-second window spreads each second's calls
  out instead of firing them as one burst.

The registry is keyed by app key; configuring a key again with a different rate replaces
its limiter (the latest configuration wins), which existing clients pick up on their next
call because they look the limiter up each time.

No limiter runs a thread. pyrate-limiter's default schedules a "Leaker" (a daemon thread with
its own event loop: an epoll fd and a socketpair) per limiter, which lived until the process
ended: a run over 1,000 app keys had 1,000 of them. Here each limiter drops the calls that
left its windows itself, after each acquire (one bisect of a list of at most ``rate`` calls),
so a limiter is a plain object whatever the number of app keys.
"""

from __future__ import annotations

import logging
import math
import threading

from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, SingleBucketFactory

from provisioner.errors import ConfigError

MAX_RATE = 100.0
"""RongCloud's documented ceiling: 100 calls per second per app key."""
DEFAULT_RATE = 50.0
JITTER_MARGIN_MS = 100
SMOOTHING_SLICES = 10

logger = logging.getLogger("provisioner.rongcloud")


def check_rate(rate: float) -> float:
    """``rate`` if it is a usable calls-per-second figure (0 < rate ≤ 100), else ConfigError."""
    if not (isinstance(rate, int | float) and math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise ConfigError(
            f"rate limit {rate!r} calls/s is out of range",
            hint=f"use a number above 0 and at most {MAX_RATE:g} (RongCloud's documented limit)",
        )
    return float(rate)


def rates_for(rate: float) -> list[Rate]:
    """pyrate-limiter rates that admit at most ``rate`` calls in any second (plus the margin)."""
    per_second = check_rate(rate)
    if per_second < 1:
        return [Rate(1, round(Duration.SECOND.value / per_second) + JITTER_MARGIN_MS)]
    limit = math.floor(per_second)
    window = round(Duration.SECOND.value * limit / per_second) + JITTER_MARGIN_MS
    slice_limit = max(1, math.ceil(limit / SMOOTHING_SLICES))
    if slice_limit >= limit:
        return [Rate(limit, window)]
    # Denser than the long window (pyrate requires non-increasing density as windows grow).
    slice_window = max(1, math.floor(window * slice_limit / limit))
    return [Rate(slice_limit, slice_window), Rate(limit, window)]


class AppRateLimiter:
    """Blocks callers so that at most ``rate`` calls per second go out for one app key."""

    def __init__(self, app_key: str, rate: float) -> None:
        self.app_key = app_key
        self.rate = check_rate(rate)
        self._bucket = InMemoryBucket(rates_for(self.rate))
        factory = SingleBucketFactory(self._bucket, schedule_leak=False)
        self._limiter = Limiter(factory, buffer_ms=5)

    def acquire(self) -> None:
        """Wait (thread-safe) until one more call is allowed, then count it."""
        if not self._limiter.try_acquire(self.app_key, blocking=True):
            # Only happens when the weight can never fit, which a weight of 1 always does.
            raise ConfigError(f"rate limiter for app key {self.app_key!r} refused a call")
        self._bucket.leak(self._bucket.now())  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._limiter.close()

    def __repr__(self) -> str:
        return f"AppRateLimiter(app_key={self.app_key!r}, rate={self.rate:g})"


class RateLimiterRegistry:
    """App key → its :class:`AppRateLimiter`; thread-safe."""

    def __init__(self) -> None:
        self._limiters: dict[str, AppRateLimiter] = {}
        self._lock = threading.Lock()

    def configure(self, app_key: str, rate: float) -> AppRateLimiter:
        """The limiter for ``app_key`` at ``rate``, creating or replacing it as needed."""
        check_rate(rate)
        with self._lock:
            current = self._limiters.get(app_key)
            if current is not None and current.rate == float(rate):
                return current
            replacement = AppRateLimiter(app_key, rate)
            self._limiters[app_key] = replacement
        if current is not None:
            logger.debug("rate limit for app key %s changed to %g/s", app_key, rate)
            current.close()
        return replacement

    def get(self, app_key: str) -> AppRateLimiter:
        """The limiter configured for ``app_key`` (the default rate if none was)."""
        with self._lock:
            existing = self._limiters.get(app_key)
        return existing if existing is not None else self.configure(app_key, DEFAULT_RATE)


RATE_LIMITERS = RateLimiterRegistry()
"""The process-wide registry every :class:`~provisioner.rongcloud.RongCloudClient` uses."""
