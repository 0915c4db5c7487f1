"""Recording: after each successful call, the change goes into the app's state and the state
is written through its backend before the change counts as applied."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from provisioner.errors import ProvisionerError, StateError, StateNotPersistedError
from provisioner.plan import Change, source_file
from provisioner.state.backend import StateBackend
from provisioner.state.holder import utc_now
from provisioner.state.model import RECORDED_AT, RecordedApp, RecordedBot


class Recorder(Protocol):
    """Records one successful change in state (and persists it) before returning; raises
    StateError when the state cannot be written, StateNotPersistedError when it was kept
    only on local disk. ``pending_error`` reports a failure to persist found after a write
    had returned (a shared backend pushing in the background): apply then starts no new
    call."""

    def record(self, change: Change, server: Mapping[str, Any]) -> None: ...

    def pending_error(self) -> ProvisionerError | None: ...


class StateRecorder:
    """Records changes into a RecordedApp and writes it through the backend after each one.

    Thread-safe: one write at a time, each from the state the previous write produced
    (serial + 1 per change), each stamped with ``run``, the CI run making it (if any), and
    ``plan_id``, the plan it carries out.
    """

    def __init__(
        self,
        backend: StateBackend,
        state: RecordedApp,
        *,
        run: str | None = None,
        plan_id: str | None = None,
    ) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._run = run
        """The CI run doing the writes (recorded as the state's ``last_run``)."""
        self._plan_id = plan_id
        """The plan the writes carry out (recorded as the state's ``last_plan``)."""
        self.state = state

    def record(self, change: Change, server: Mapping[str, Any]) -> None:
        bot = None
        if change.action != "delete":
            spec = dict(change.after or {})
            bot = RecordedBot(
                spec=spec,
                protect=change.protect,
                server={**dict(server), RECORDED_AT: utc_now()},
                source=source_file(change.source),
            )
        with self._lock:
            updated = self.state.with_bot(change.user_id, bot).written_by(self._run, self._plan_id)
            try:
                self._backend.write(updated)
            except StateNotPersistedError:
                self.state = updated  # recorded on local disk: the next write builds on it
                raise
            except StateError as exc:
                then = "re-run `provisioner apply`: it reads the bot back and records it"
                raise StateError(
                    f"{change.action} of {change.user_id} was applied but could not be"
                    f" recorded: {exc.message}",
                    hint=f"{exc.hint}; then {then}" if exc.hint else then[0].upper() + then[1:],
                ) from exc
            self.state = updated

    def pending_error(self) -> ProvisionerError | None:
        return self._backend.pending_error()
