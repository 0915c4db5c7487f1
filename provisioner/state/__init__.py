"""Recorded state: what provisioner last applied to each app, and the lock around it.

Public API (used by plan, apply and the ``state`` command): :class:`RecordedApp`,
:class:`RecordedBot`, :class:`LockHolder`, :class:`FileBackend` and :func:`backend_for`.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.models import AppSettings, DesiredApp
from provisioner.state.file import FileBackend, dumps_state
from provisioner.state.model import STATE_VERSION, LockHolder, RecordedApp, RecordedBot

DEFAULT_STATE_DIR = Path(".provisioner") / "state"

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_VERSION",
    "FileBackend",
    "LockHolder",
    "RecordedApp",
    "RecordedBot",
    "backend_for",
    "default_state_path",
    "dumps_state",
]


def default_state_path(app_name: str) -> Path:
    """``.provisioner/state/<app>.json`` (relative to the working directory)."""
    return DEFAULT_STATE_DIR / f"{app_name}.json"


def backend_for(
    app: DesiredApp | str, settings: AppSettings | None = None, *, base_dir: Path | None = None
) -> FileBackend:
    """The state backend of an app: ``state.path`` from its settings, else the default path.

    ``app`` is a DesiredApp (its settings are used) or an app name with optional settings.
    Relative paths are taken from ``base_dir`` (default: the current working directory).
    """
    if isinstance(app, DesiredApp):
        name, settings = app.name, app.settings
    else:
        name = app
    configured = settings.state.path if settings is not None else None
    path = Path(configured) if configured else default_state_path(name)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return FileBackend(path, name)
