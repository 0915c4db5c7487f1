"""Recorded state: what provisioner last applied to each app, and the lock around it.

Public API (used by plan, apply and the ``state`` command): :class:`RecordedApp`,
:class:`RecordedBot`, :class:`LockHolder`, the :class:`StateBackend` protocol and its one
factory :func:`backend_for` (``file``, ``git`` or ``postgres`` from the app's settings).

The pure :mod:`provisioner.plan` imports the model through this package, so the backends (and
filelock, subprocess, psycopg behind them) are imported only when :func:`backend_for` builds
one, or when ``FileBackend`` is looked up here. Imported at the top, the git backend would take
subprocess into the pure core, and the file and git backends would more than double what
``import provisioner.state`` costs (``python -X importtime``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.errors import StateError
from provisioner.extras import requires_extra
from provisioner.state.backend import StateBackend
from provisioner.state.codec import dumps_state
from provisioner.state.model import STATE_VERSION, LockHolder, RecordedApp, RecordedBot

if TYPE_CHECKING:
    from provisioner.models import AppSettings, DesiredApp
    from provisioner.state.file.backend import FileBackend

DEFAULT_STATE_DIR = Path(".provisioner") / "state"

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_VERSION",
    "FileBackend",
    "LockHolder",
    "RecordedApp",
    "RecordedBot",
    "StateBackend",
    "backend_for",
    "check_app_name",
    "default_state_path",
    "dumps_state",
]


def __getattr__(name: str) -> Any:
    """``FileBackend``, imported on first use (see the module docstring)."""
    if name == "FileBackend":
        from provisioner.state.file.backend import FileBackend

        return FileBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def backend_for(
    app: DesiredApp | str,
    settings: AppSettings | None = None,
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> StateBackend:
    """The state backend of an app, from ``state`` in its settings (default: the file
    ``.provisioner/state/<app>.json``).

    ``app`` is a DesiredApp (its settings are used) or an app name with optional settings.
    Relative paths, the git repository and ``.provisioner/`` are taken from ``base_dir``
    (default: the current working directory); ``${NAME}`` in a DSN from ``env`` (default:
    the process environment). Nothing is read or connected until the backend is used.
    """
    if isinstance(app, str):
        name = app
    else:
        name, settings = app.name, app.settings
    check_app_name(name)
    base = base_dir if base_dir is not None else Path.cwd()
    state = settings.state if settings is not None else None
    if state is None or state.backend == "file":
        from provisioner.state.file.backend import FileBackend

        configured = state.path if state is not None else None
        path = Path(configured) if configured else default_state_path(name)
        return FileBackend(path if path.is_absolute() else base / path, name, shown=str(path))
    if state.backend == "git":
        from provisioner.state.git.backend import GitBackend

        return GitBackend.for_settings(name, state, base)
    with requires_extra("postgres"):
        from provisioner.state.postgres.backend import PostgresBackend

    return PostgresBackend.for_settings(name, state, base, env)
