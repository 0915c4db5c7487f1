"""The state settings of an app named on the command line, read from its ``app.yaml`` even
when its bot manifests are broken (``state show``, ``unlock``, ``pull``, ``push``, ``forget``).

``app.yaml`` is read with the project's loader (:func:`provisioner.manifest.load_document`:
bounded size, depth and aliases) and only its ``state`` block is checked, with the same
schema and messages as ``validate``. A missing ``app.yaml`` means the default file backend; an
unreadable one, or an invalid ``state`` block, is a ConfigError: guessing could point a
command at the wrong store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import ConfigError

if TYPE_CHECKING:
    from provisioner.diagnostics import Diagnostic
    from provisioner.manifest import Document
    from provisioner.models import AppSettings
    from provisioner.state.backend import StateBackend


def app_folder(name_or_path: str, bots_dir: Path) -> tuple[str, Path]:
    """The app name and folder for a command-line argument: an app name under ``bots_dir``
    or the path to an app folder (the folder need not exist)."""
    folder = bots_dir / name_or_path
    if not folder.is_dir() and Path(name_or_path).is_dir():
        folder = Path(name_or_path)
    name = folder.absolute().name if folder.is_dir() else name_or_path
    return name, folder


def state_backend_for(
    name_or_path: str, bots_dir: Path, *, env: Mapping[str, str] | None = None
) -> StateBackend:
    """The state backend of an app named on the command line."""
    from provisioner.state import backend_for

    name, folder = app_folder(name_or_path, bots_dir)
    return backend_for(name, state_settings(folder / "app.yaml"), env=env)


def state_settings(app_yaml: Path) -> AppSettings | None:
    """The settings holding ``app_yaml``'s ``state`` block (None without an app.yaml)."""
    from pydantic import ValidationError

    from provisioner.manifest import load_document
    from provisioner.models import AppSettings, FileStateSettings
    from provisioner.validate import display_path

    if not app_yaml.exists() and not app_yaml.is_symlink():
        return None
    shown = display_path(app_yaml)
    document = load_document(app_yaml, shown)
    if not document.loaded:
        raise _settings_error(shown, [_format(d) for d in document.diagnostics])
    state = document.value.get("state")
    if state is None:
        return AppSettings(endpoint="local", state=FileStateSettings())
    problems = _state_problems(document)
    if problems:
        raise _settings_error(shown, problems)
    try:
        return AppSettings.model_validate({"endpoint": "local", "state": state})
    except ValidationError as exc:  # pragma: no cover - the schema check above agrees
        raise _settings_error(shown, [str(exc)]) from exc


def _state_problems(document: Document) -> list[str]:
    """The schema and rule errors of the ``state`` block, as ``file:line:col: ...`` lines."""
    from provisioner.validate import check_document

    return [
        _format(d)
        for d in check_document(document, "app")
        if d.severity == "error" and (d.path == "state" or d.path.startswith("state."))
    ]


def _format(diagnostic: Diagnostic) -> str:
    from provisioner.workspace import format_diagnostic

    return format_diagnostic(diagnostic)


def _settings_error(shown: str, problems: list[str]) -> ConfigError:
    lines = "\n".join(f"  {line}" for line in problems)
    return ConfigError(
        f"cannot read the state settings of {shown}:\n{lines}",
        hint=f"fix them (`provisioner validate {Path(shown).parent.as_posix()}` shows the"
        " details), then run again",
    )
