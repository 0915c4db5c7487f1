"""The one protocol every state backend implements (``file``, ``git``, ``postgres``,
``gitlab``).

How apply uses it, per app::

    backend = backend_for(app)
    planned = backend.read_when_free("provisioner apply")  # LockedError naming the holder
    ... plan against it, show it, approve it: the lock is not held meanwhile ...
    with backend.lock("provisioner apply"):      # LockedError naming the holder, at once
        state = backend.read()                   # refused when not the planned serial
        for each successful call:
            if backend.pending_error(): stop     # git: a background push failed
            state = state.with_bot(...)          # serial + 1
            backend.write(state)                 # compare-and-swap on state.serial - 1
    # leaving the block: git pushes what is pending, then releases; failure = StateError

``plan`` calls ``backend_for(app).read()`` without the lock: one committed version, whose
serial the plan shows. A StateError from ``write`` (or from leaving ``lock``) is fatal for
the app: no new call may start. Where the shared store cannot be written, the backend has
already saved what it knows to ``.provisioner/state-unsaved/<app>.json`` and the error's hint
is the exact ``provisioner state push APP FILE`` command that finishes the job.

Beside the state, each backend keeps the app's drift record (what the last drift run saw,
:mod:`provisioner.state.drift_record`): read by `github plan`, written by the drift runs,
outside the lock and the state's serial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Literal, Protocol, TypeVar

from provisioner.errors import LockedError, StateError
from provisioner.state.drift_record import DriftRecord
from provisioner.state.model import LockHolder, RecordedApp

BackendKind = Literal["file", "git", "postgres", "gitlab"]
_T = TypeVar("_T")

logger = logging.getLogger("provisioner.state")
"""The backends' notices (WARNING): shown to the user by the CLI."""


def tell(notices: list[str], notice: str) -> None:
    """Keep ``notice`` for :meth:`StateBackend.notices` and log it for the user."""
    notices.append(notice)
    logger.warning("%s", notice)


class StateBackend(Protocol):
    """Recorded state of one app, somewhere. The backends subclass it, so :meth:`read`
    is written once (on :meth:`read_recorded`)."""

    app: str
    """The app's name (its folder under bots/)."""
    kind: BackendKind

    def describe(self) -> str:
        """Where the state lives, for messages (a path, a branch, a schema; never a DSN)."""
        ...

    def read(self) -> RecordedApp:
        """The recorded state: one committed version (a fresh serial-0 state when nothing
        is recorded). While this backend holds the lock, the latest state it wrote."""
        stored = self.read_recorded()
        return stored if stored is not None else RecordedApp.fresh(self.app)

    def read_recorded(self) -> RecordedApp | None:
        """Like :meth:`read`, but None when nothing is recorded."""
        ...

    def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
        """Store ``state`` if the stored one is still ``expected_serial`` (default
        ``state.serial - 1``) of ``state.lineage``: StateConflictError naming both versions
        otherwise. ``state.serial`` must be greater than ``expected_serial``."""
        ...

    def read_when_free(self, command: str) -> RecordedApp | None:
        """Like :meth:`read_recorded`, for an apply's plan: LockedError naming the holder,
        as :meth:`lock` raises it, when another run holds the lock. Here: take the lock and
        give it back (cheap on a file, a session or GitLab's lock); ``git``, where a lock
        and its release are two commits, reads its lock record instead."""
        with self.lock(command):
            return self.read_recorded()

    def lock(self, command: str) -> AbstractContextManager[None]:
        """Hold the app's lock for the block; LockedError naming the holder at once if
        another run holds it. Leaving the block persists what is pending first (git) and
        raises StateError, with the push command in its hint, when that fails."""
        ...

    def lock_holder(self) -> LockHolder | None:
        """The recorded holder of the lock (None when it is free or the holder unknown)."""
        ...

    def is_locked(self) -> bool:
        """True when a live run holds the lock (a dead holder's leftover record does not
        count)."""
        ...

    def unlock(self) -> LockHolder | None:
        """Remove the lock, live or not (the caller checks :meth:`is_locked` first); returns
        the holder it recorded."""
        ...

    def pending_error(self) -> StateError | None:
        """A write that was accepted but could not reach the shared store since (git: a
        background push failed); None when every write so far is safe. Check it before
        starting each new call."""
        ...

    def notices(self) -> list[str]:
        """What the user should be told about the last :meth:`lock` (an expired lease or a
        dead session's record taken over, an unsaved state left by an earlier run). Each is
        also logged at WARNING on the ``provisioner.state`` logger, which the CLI prints as
        ``warning: ...`` for every command."""
        ...

    def read_drift_record(self) -> DriftRecord | None:
        """What the last drift run saw of this app (None: no run recorded one yet);
        StateError when the stored record cannot be read or is damaged. Needs no lock and
        creates nothing."""
        ...

    def write_drift_record(self, record: DriftRecord) -> None:
        """Store ``record`` beside the state, replacing the previous one: no lock, no
        serial, never in the way of an apply (the last writer wins); StateError when it
        cannot be stored."""
        ...


LOCK_POLL = 1.0
"""Seconds between two tries of a held lock while ``--lock-timeout`` waits."""


@contextmanager
def lock_waiting(
    backend: StateBackend,
    command: str,
    timeout: float | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """``backend.lock(command)``, waiting up to ``timeout`` seconds while another run holds
    it (``--lock-timeout``; None or 0: LockedError at once, as ``lock`` itself). The wait is
    announced once on the state logger, naming the holder; when it runs out, the LockedError
    names the holder and the wait."""
    with ExitStack() as stack:
        _waiting(lambda: stack.enter_context(backend.lock(command)), timeout, sleep, clock)
        yield


def read_waiting(
    backend: StateBackend,
    command: str,
    timeout: float | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RecordedApp | None:
    """``backend.read_when_free(command)``, waiting for a held lock as :func:`lock_waiting`
    does (an apply's plan job: the lock is taken by its apply job)."""
    return _waiting(lambda: backend.read_when_free(command), timeout, sleep, clock)


def _waiting(
    attempt: Callable[[], _T],
    timeout: float | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> _T:
    """``attempt()``, tried again every :data:`LOCK_POLL` seconds while it raises LockedError,
    for up to ``timeout`` seconds (see :func:`lock_waiting`)."""
    deadline = clock() + (timeout or 0.0)
    waited = False
    while True:
        try:
            return attempt()
        except LockedError as exc:
            left = deadline - clock()
            if left <= 0:
                if not waited:
                    raise
                raise LockedError(
                    f"{exc.message}, still after waiting {timeout:g} s (--lock-timeout)",
                    hint=exc.hint,
                ) from exc
            if not waited:
                logger.warning("%s; waiting up to %g s for it", exc.message, timeout)
                waited = True
            sleep(min(LOCK_POLL, left))
