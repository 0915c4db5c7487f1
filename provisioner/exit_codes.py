"""Exit codes beyond 0 (success) and 1 (error), in one place (documented in the README).

Errors carry theirs as ``exit_code``; tests/test_cli.py checks that the two agree.
"""

from collections.abc import Iterable

EXIT_CHANGES = 2
"""Changes or drift present (``plan --detailed-exitcode``)."""
EXIT_BLOCKED = 3
"""Blocked by a safety rule (``UnsafePlanError.exit_code``)."""
EXIT_PARTIAL = 4
"""Partial apply (``ApplyError.exit_code``)."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (SIGINT): calls in flight finished and were recorded."""
EXIT_TERMINATED = 143
"""Stopped by SIGTERM (a CI runner cancelling the job): handled exactly like Ctrl-C."""

SEVERITY = (EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_PARTIAL, 1, EXIT_BLOCKED, EXIT_CHANGES, 0)
"""Outcomes from worst to best, for a run over several apps: an interruption, then a partial
apply (the world changed half-way), an error or refusal, a block by a safety rule, changes."""


def worst(codes: Iterable[int]) -> int:
    """The worst of several outcomes (0 when there are none); an unknown code counts as 1."""
    known = [code if code in SEVERITY else 1 for code in codes]
    return min(known, key=SEVERITY.index, default=0)


def interrupted_exit_code(reason: str) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (a stop signal's reason)."""
    return EXIT_TERMINATED if reason == "terminated" else EXIT_INTERRUPTED
