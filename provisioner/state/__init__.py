"""Recorded state: what provisioner last applied to each app, and the lock around it.

The face of the package is pure values (:class:`RecordedApp`, :class:`RecordedBot`,
:class:`LockHolder`, the :class:`StateBackend` protocol, the codec): the pure
:mod:`provisioner.plan` imports them, so nothing here loads a backend. The backends are
sub-packages (``file/``, ``git/``, ``postgres/``) and :mod:`provisioner.state.backends` is
their one factory, :func:`~provisioner.state.backends.backend_for`.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import StateError
from provisioner.state.backend import StateBackend
from provisioner.state.codec import dumps_state
from provisioner.state.model import STATE_VERSION, LockHolder, RecordedApp, RecordedBot

DEFAULT_STATE_DIR = Path(".provisioner") / "state"

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_VERSION",
    "LockHolder",
    "RecordedApp",
    "RecordedBot",
    "StateBackend",
    "check_app_name",
    "default_state_path",
    "dumps_state",
]


def default_state_path(app_name: str) -> Path:
    """``.provisioner/state/<app>.json`` (relative to the working directory)."""
    return DEFAULT_STATE_DIR / f"{app_name}.json"


def check_app_name(name: str) -> str:
    """``name`` if it can name an app (a folder name: no separator, not hidden); StateError
    otherwise, so that no state or lock path is ever built outside its folder."""
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise StateError(
            f"{name!r} is not an app name",
            hint="name an app by its folder under bots/ (e.g. demo), or pass its folder path",
        )
    return name
