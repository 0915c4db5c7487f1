"""Fault injection for the emulator: latency, 5xx errors, 429 bursts, commit-then-drop, and
random codes for the outcomes RongCloud gives no code for.

A :class:`FaultConfig` is a plain value; the :class:`FaultInjector` holds the current one
behind a lock (tests change it from their own thread while the server thread reads it) and a
``random.Random`` seeded from ``FaultConfig.seed``, so a run with a seed draws the same
sequence of faults for the same sequence of requests.

Random draws happen only for a fault whose rate is above zero, in this order per request:
``error_rate`` (before anything else), then, for a write that succeeded, ``drop_after_commit``.
The codes of ``random_undocumented_codes`` come from a second ``random.Random`` seeded from
the same seed, so switching it on changes no other fault's draws.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass
from typing import Any

from provisioner.emulator.codes import DOCUMENTED_CODES, INVENTED_CODES, RANDOM_CODES
from provisioner.errors import ConfigError

FAULT_FIELDS = (
    "latency_ms",
    "error_rate",
    "burst_429",
    "drop_after_commit",
    "random_undocumented_codes",
    "seed",
)


@dataclass(frozen=True)
class FaultConfig:
    """What the emulator does wrong on purpose.

    latency_ms: delay before every bot API request is handled. A request already waiting follows
        a change: raising it holds the request longer, lowering it (to 0) releases it.
    error_rate: fraction (0..1) of bot API requests answered HTTP 500 before doing anything.
    burst_429: the next N bot API requests get HTTP 429 / code 1008 (counts down).
    drop_after_commit: fraction (0..1) of successful writes (create/update/delete) whose change
        is committed and whose connection is then dropped without any response.
    random_undocumented_codes: answer every outcome whose code the emulator invents (duplicate
        userId, quota, >20 ids, unknown bot, unknown path or method) with HTTP 400 and a random
        code that no RongCloud table lists, instead of 1010, 1502, 1404, 404, 405.
    seed: seeds the random draws, so a run is deterministic; ``None`` draws from the OS.
    """

    latency_ms: float = 0
    error_rate: float = 0.0
    burst_429: int = 0
    drop_after_commit: float = 0.0
    random_undocumented_codes: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_number("latency_ms", self.latency_ms, minimum=0.0, maximum=None)
        _check_number("error_rate", self.error_rate, minimum=0.0, maximum=1.0)
        _check_number("drop_after_commit", self.drop_after_commit, minimum=0.0, maximum=1.0)
        if isinstance(self.burst_429, bool) or not isinstance(self.burst_429, int):
            raise ConfigError(
                f"fault burst_429 must be a whole number, got {self.burst_429!r}",
                hint="give the number of requests that should be answered 429",
            )
        if self.burst_429 < 0:
            raise ConfigError(
                f"fault burst_429 must be 0 or more, got {self.burst_429}",
                hint="give the number of requests that should be answered 429",
            )
        if not isinstance(self.random_undocumented_codes, bool):
            raise ConfigError(
                "fault random_undocumented_codes must be true or false, "
                f"got {self.random_undocumented_codes!r}",
                hint="true answers every undocumented outcome with a random code",
            )
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(
                f"fault seed must be a whole number or null, got {self.seed!r}",
                hint="use an integer seed for a deterministic run",
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON view (the admin endpoint's body)."""
        return dataclasses.asdict(self)

    def replace(self, **fields: Any) -> FaultConfig:
        """A copy with ``fields`` changed; unknown names are a ConfigError."""
        unknown = sorted(set(fields) - set(FAULT_FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown fault setting {', '.join(unknown)}",
                hint=f"use any of: {', '.join(FAULT_FIELDS)}",
            )
        return dataclasses.replace(self, **fields)


def _check_number(name: str, value: object, *, minimum: float, maximum: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"fault {name} must be a number, got {value!r}")
    upper = "" if maximum is None else f" and at most {maximum:g}"
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(
            f"fault {name} must be at least {minimum:g}{upper}, got {value!r}",
            hint="rates are fractions: 0.25 means one request in four",
        )


class FaultInjector:
    """The live fault settings plus the seeded random source and counters (thread safe)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._random = random.Random(self._config.seed)
        self._code_random = _code_random(self._config.seed)
        self._burst_left = self._config.burst_429
        self.counters: dict[str, int] = _zero_counters()

    @property
    def config(self) -> FaultConfig:
        """The current settings; ``burst_429`` shows how many 429s are still to come."""
        with self._lock:
            return dataclasses.replace(self._config, burst_429=self._burst_left)

    def set(self, **fields: Any) -> FaultConfig:
        """Change some settings. A given ``seed`` (even the same one) restarts the random draws."""
        with self._lock:
            current = dataclasses.replace(self._config, burst_429=self._burst_left)
            self._config = current.replace(**fields)
            if "seed" in fields:
                self._random = random.Random(self._config.seed)
                self._code_random = _code_random(self._config.seed)
            self._burst_left = self._config.burst_429
            return self._config

    def latency_seconds(self) -> float:
        """How long to wait before handling a request (counts the delayed requests)."""
        with self._lock:
            if self._config.latency_ms <= 0:
                return 0.0
            self.counters["delayed"] += 1
            return self._config.latency_ms / 1000.0

    def current_latency_seconds(self) -> float:
        """The latency setting now, without counting (a waiting request re-reads it)."""
        with self._lock:
            return max(self._config.latency_ms, 0) / 1000.0

    def should_fail(self) -> bool:
        """Draw whether this request gets an injected HTTP 500."""
        with self._lock:
            if self._config.error_rate <= 0 or self._random.random() >= self._config.error_rate:
                return False
            self.counters["errors"] += 1
            return True

    def take_burst(self) -> bool:
        """Whether this request is one of the pending ``burst_429`` requests."""
        with self._lock:
            if self._burst_left <= 0:
                return False
            self._burst_left -= 1
            self.counters["bursts"] += 1
            return True

    def should_drop(self) -> bool:
        """Draw whether the connection of this (committed) write is dropped."""
        with self._lock:
            rate = self._config.drop_after_commit
            if rate <= 0 or self._random.random() >= rate:
                return False
            self.counters["drops"] += 1
            return True

    def undocumented_code(self) -> int | None:
        """A random code for an undocumented outcome (counted), or ``None`` when the switch
        ``random_undocumented_codes`` is off and the invented code stands."""
        with self._lock:
            if not self._config.random_undocumented_codes:
                return None
            self.counters["random_codes"] += 1
            return draw_undocumented_code(self._code_random)

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = _zero_counters()

    def snapshot_counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)


def draw_undocumented_code(draws: random.Random) -> int:
    """A code from :data:`~provisioner.emulator.codes.RANDOM_CODES` that is neither in
    RongCloud's code table (so never 200, 1002, 1004 or 1008) nor one the emulator invents."""
    while True:
        code = draws.choice(RANDOM_CODES)
        if code not in DOCUMENTED_CODES and code not in INVENTED_CODES:
            return code


def _code_random(seed: int | None) -> random.Random:
    """The random source of undocumented codes: its own sequence, derived from ``seed``."""
    return random.Random(None if seed is None else f"undocumented codes {seed}")


def _zero_counters() -> dict[str, int]:
    return {"delayed": 0, "errors": 0, "bursts": 0, "drops": 0, "random_codes": 0}
