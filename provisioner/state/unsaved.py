"""What a backend does when its shared store cannot take a write: keep the state locally.

The state goes to ``.provisioner/state-unsaved/<app>.json`` (the same document as every
backend stores, written atomically), and the StateError's hint is the exact command that
finishes the job once the store is reachable: ``provisioner state push APP FILE``.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import StateError, StateNotPersistedError
from provisioner.state.atomic import AtomicFile
from provisioner.state.codec import dumps_state
from provisioner.state.model import RecordedApp

UNSAVED_STATE_DIR = Path(".provisioner") / "state-unsaved"
"""Where a backend that could not reach its shared store keeps what it knows."""


def unsaved_path(app: str, base_dir: Path) -> Path:
    return base_dir / UNSAVED_STATE_DIR / f"{app}.json"


def save_unsaved(state: RecordedApp, base_dir: Path) -> Path:
    """Write ``state`` to its unsaved file; returns the path as a command should name it
    (relative to ``base_dir``). OSError when even that fails."""
    path = unsaved_path(state.app, base_dir)
    writer = AtomicFile(path)
    try:
        writer.replace(dumps_state(state).encode("utf-8"))
    finally:
        writer.close()
    return path.relative_to(base_dir) if path.is_relative_to(base_dir) else path


def push_command(app: str, path: Path) -> str:
    return f"provisioner state push {app} {path.as_posix()}"


def persist_failure(
    where: str, state: RecordedApp, base_dir: Path, reason: str, *, applied: bool = True
) -> StateError:
    """The error of a write that did not reach ``where``: ``state`` is saved locally first
    (StateNotPersistedError, whose hint names the command that stores it later), or, when
    even that fails, a plain StateError."""
    done = "the calls made so far were applied; " if applied else ""
    try:
        saved = save_unsaved(state, base_dir)
    except OSError as exc:
        return StateError(
            f"could not store the state of app {state.app} (serial {state.serial}) in {where}:"
            f" {reason}; saving it locally failed too ({exc.strerror or exc})",
            hint=f"{done}re-run `provisioner apply` with refresh once {where} is reachable: it"
            " reads the bots back and records them",
        )
    return StateNotPersistedError(
        f"could not store the state of app {state.app} (serial {state.serial}) in {where}:"
        f" {reason}; it is kept in {saved}",
        hint=f"{done}once {where} takes writes again, run `{push_command(state.app, saved)}`"
        " (or re-run `provisioner apply`, which reads the bots back)",
    )
