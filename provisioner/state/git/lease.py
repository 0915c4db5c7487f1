"""The lock record of the git backend: ``locks/<app>.json`` on the state branch.

The holder's record (:class:`~provisioner.state.model.LockHolder`) with ``expires``, the end of
a lease its holder renews. A record protects the app while its lease runs and its process may
be alive; after that anyone may take the lock over (and says so).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from provisioner.errors import LockedError
from provisioner.state.holder import format_utc, is_gone, parse_utc
from provisioner.state.model import LockHolder

DEFAULT_LEASE = 300.0
"""Seconds a lock record stays valid unless its holder renews it (every third of it)."""


def locked_error(app: str, holder: LockHolder | None) -> LockedError:
    """The refusal of a second run, naming the live holder and its lease."""
    who = holder.describe() if holder is not None else "a run whose lock record is unreadable"
    until = f" (lease until {holder.expires})" if holder is not None and holder.expires else ""
    return LockedError(
        f"the state of app {app} is locked by {who}{until}",
        hint="wait for that run to finish; if it is gone, run"
        f" `provisioner state unlock {app}` (an expired lease is taken over by the next run)",
    )


def stale_reason(holder: LockHolder | None, now: float) -> str | None:
    """Why a lock record no longer protects anything (None: it is live)."""
    if holder is None:
        return "its record could not be read"
    expires = parse_utc(holder.expires)
    if expires is None or expires.timestamp() <= now:
        return f"its lease ended at {holder.expires or 'an unknown time'}"
    if is_gone(holder):
        return "its process is gone"
    return None


def parse_record(record: bytes) -> LockHolder | None:
    """The holder in a lock record (None when it is not one)."""
    try:
        return LockHolder.from_data(json.loads(record))
    except (ValueError, RecursionError):
        return None


def with_expiry(holder: LockHolder, moment: float) -> LockHolder:
    """``holder`` whose lease ends at ``moment`` (seconds since the epoch)."""
    return replace(holder, expires=format_utc(datetime.fromtimestamp(moment, UTC)))


def record_bytes(holder: LockHolder) -> bytes:
    return (json.dumps(holder.data, indent=2, sort_keys=True) + "\n").encode("utf-8")
