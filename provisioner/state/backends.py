"""The one factory of state backends: the backend an app's ``state`` settings name.

``file`` (the default), ``git`` and ``gitlab`` are imported here; ``postgres`` needs the
``[postgres]`` extra (psycopg), so it is imported only when an app names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provisioner.extras import requires_extra
from provisioner.models import AppSettings, DesiredApp
from provisioner.state import check_app_name, default_state_path
from provisioner.state.backend import StateBackend
from provisioner.state.file.backend import FileBackend
from provisioner.state.git.backend import GitBackend
from provisioner.state.gitlab.backend import GitLabBackend


def backend_for(
    app: DesiredApp | str,
    settings: AppSettings | None = None,
    *,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    read_only: bool = False,
) -> StateBackend:
    """The state backend of an app, from ``state`` in its settings (default: the file
    ``.provisioner/state/<app>.json``).

    ``app`` is a DesiredApp (its settings are used) or an app name with optional settings.
    Relative paths, the git repository and ``.provisioner/`` are taken from ``base_dir``
    (default: the current working directory); ``${NAME}`` in a DSN from ``env`` (default:
    the process environment). ``read_only``: for a command that never locks or writes
    (plan, drift, state show): a postgres state then connects with ``readDsn`` when it is
    set and its variables are (see :meth:`PostgresBackend.for_settings`), a gitlab state
    with the job's ``CI_JOB_TOKEN`` (see :func:`provisioner.state.gitlab.backend.token_for`);
    ``${NAME}``-free gitlab settings are read from ``env`` too. Nothing is read
    or connected until the backend is used.
    """
    if isinstance(app, str):
        name = app
    else:
        name, settings = app.name, app.settings
    check_app_name(name)
    base = base_dir if base_dir is not None else Path.cwd()
    state = settings.state if settings is not None else None
    if state is None or state.backend == "file":
        configured = state.path if state is not None else None
        path = Path(configured) if configured else default_state_path(name)
        return FileBackend(path if path.is_absolute() else base / path, name, shown=str(path))
    if state.backend == "git":
        return GitBackend.for_settings(name, state, base)
    if state.backend == "gitlab":
        return GitLabBackend.for_settings(name, state, base, env, read_only=read_only)
    with requires_extra("postgres"):
        from provisioner.state.postgres.backend import PostgresBackend

    return PostgresBackend.for_settings(name, state, base, env, read_only=read_only)
