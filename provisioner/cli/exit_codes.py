"""Exit codes beyond 0 (success) and 1 (error), in one place (documented in the README).

Errors carry theirs as ``exit_code``; tests/test_cli.py checks that the two agree.
"""

EXIT_CHANGES = 2
"""Changes or drift present (``plan --detailed-exitcode``)."""
EXIT_BLOCKED = 3
"""Blocked by a safety rule (``UnsafePlanError.exit_code``)."""
EXIT_PARTIAL = 4
"""Partial apply (``ApplyError.exit_code``)."""
EXIT_INTERRUPTED = 130
