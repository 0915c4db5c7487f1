"""Compare-and-swap rules shared by every backend: a write names the version it replaces.

A write of ``state`` expects the stored state to be serial ``expected`` of ``state.lineage``
(``expected`` 0: nothing stored yet) and must increase the serial. Anything else means the
state changed since it was read, and the write is refused: it never overwrites a state it
did not read.
"""

from __future__ import annotations

from provisioner.errors import StateConflictError, StateError
from provisioner.state.model import RecordedApp

REPLAN_HINT = "re-run plan against the current state; the stored state was left untouched"


def expected_serial_of(state: RecordedApp, expected_serial: int | None) -> int:
    """The serial a write of ``state`` replaces: ``expected_serial``, else ``serial - 1``."""
    return state.serial - 1 if expected_serial is None else expected_serial


def check_write(
    where: str, app: str, stored: RecordedApp | None, state: RecordedApp, expected: int
) -> None:
    """Raise unless writing ``state`` over ``stored`` (None: nothing stored) is the
    compare-and-swap of version ``expected``."""
    check_request(where, app, state, expected)
    check_stored(where, stored, state, expected)


def check_request(where: str, app: str, state: RecordedApp, expected: int) -> None:
    """Raise for a write that no stored state can make right: another app's state, or a
    serial that does not grow (both are bugs)."""
    if state.app != app:
        raise StateError(
            f"{where}: refusing to write the state of app {state.app} into the state of app {app}",
            hint="this is a bug in provisioner",
        )
    if state.serial <= expected:
        raise StateError(
            f"{where}: refusing to write serial {state.serial} over serial {expected}: every"
            " write must increase the serial",
            hint="this is a bug in provisioner",
        )


def check_stored(where: str, stored: RecordedApp | None, state: RecordedApp, expected: int) -> None:
    """StateConflictError unless ``stored`` is version ``expected`` of ``state``'s lineage."""
    if stored is None:
        if expected != 0:
            raise StateConflictError(
                f"{where}: expected serial {expected} of lineage {state.lineage}, but no state"
                f" is stored any more; refusing to write serial {state.serial}",
                hint=REPLAN_HINT,
            )
        return
    if stored.lineage != state.lineage:
        raise StateConflictError(
            f"{where}: the stored state has lineage {stored.lineage}, not {state.lineage};"
            " it was replaced by another history",
            hint=REPLAN_HINT,
        )
    if stored.serial != expected:
        why = "another run wrote it meanwhile" if stored.serial > expected else "it was rolled back"
        raise StateConflictError(
            f"{where}: the stored state has serial {stored.serial}, not {expected}; refusing"
            f" to write serial {state.serial} over it ({why})",
            hint=REPLAN_HINT,
        )
