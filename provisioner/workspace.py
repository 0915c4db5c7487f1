"""The apps of a command line: which app folders the arguments name, and loading them into
validated DesiredApps (every error of every app in one ManifestError).

The CLI commands that load manifests (``plan``, ``apply``, ...) all go through here, so they
resolve and load apps the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import ConfigError, ManifestError
from provisioner.state import backend_for

if TYPE_CHECKING:
    from provisioner.diagnostics import Diagnostic
    from provisioner.models import AppSettings, DesiredApp
    from provisioner.state import FileBackend

CREDENTIAL_FIELDS = frozenset({"appKey", "appSecret"})
REFRESH_FIELDS = CREDENTIAL_FIELDS | {"endpoint"}
"""Settings only a refresh (an API call) needs: their unset variables do not fail loading."""


def resolve_app_folders(names_or_paths: Sequence[str], bots_dir: Path) -> list[Path]:
    """App folders for the command-line arguments: an app name under ``bots_dir`` or a path
    to an app folder; no arguments means every app folder under ``bots_dir``."""
    if not names_or_paths:
        from provisioner.validate import discover_apps

        if not bots_dir.is_dir():
            raise ConfigError(
                f"no bots directory {bots_dir}",
                hint="run from the repository root, or pass --bots-dir or an app folder",
            )
        return list(discover_apps([bots_dir]))
    folders: list[Path] = []
    for arg in names_or_paths:
        candidate = Path(arg)
        named = bots_dir / arg
        if named.is_dir() and "/" not in arg and os.sep not in arg:
            folders.append(named)
        elif candidate.is_dir():
            folders.append(candidate)
        else:
            raise ConfigError(
                f"no app {arg!r}: neither {named} nor {candidate} is a folder",
                hint=f"give an app name under {bots_dir}/ or the path to an app folder",
            )
    return folders


@dataclass(frozen=True)
class LoadedApp:
    """One app folder after loading: the app, or the ManifestError listing why it cannot be
    loaded; ``warnings`` are the validation warnings of its manifests either way."""

    name: str
    app: DesiredApp | None
    error: ManifestError | None
    problems: tuple[Diagnostic, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()


def load_each(
    names_or_paths: Sequence[str], bots_dir: Path, *, env: Mapping[str, str] | None = None
) -> list[LoadedApp]:
    """Load and validate each app named on the command line (see
    :func:`resolve_app_folders`), on its own: one app's broken manifests do not stop another.

    ConfigError when an argument names no app, or two folders have the same app name (they
    would share state and lock).
    """
    environ = os.environ if env is None else env
    folders = resolve_app_folders(names_or_paths, bots_dir)
    _refuse_same_names(folders)
    return [_load_one(folder, environ) for folder in folders]


def load_apps(
    names_or_paths: Sequence[str], bots_dir: Path, *, env: Mapping[str, str] | None = None
) -> list[DesiredApp]:
    """:func:`load_each`, all or nothing: every error of every app is collected into one
    ManifestError whose message lists them as ``file:line:col: path: message``."""
    return all_loaded(load_each(names_or_paths, bots_dir, env=env))


def all_loaded(loaded: Sequence[LoadedApp]) -> list[DesiredApp]:
    """The apps of :func:`load_each`, all or nothing (see :func:`load_apps`)."""
    problems = [problem for each in loaded for problem in each.problems]
    if problems:
        raise _manifest_error(problems)
    return [each.app for each in loaded if each.app is not None]


def _load_one(folder: Path, env: Mapping[str, str]) -> LoadedApp:
    from provisioner.validate import validate_app

    result = validate_app(folder, env=env)
    problems = tuple(d for d in result.diagnostics if _fails_load(d))
    warnings = tuple(d for d in result.diagnostics if d.severity == "warning")
    if problems:
        return LoadedApp(result.name, None, _manifest_error(problems), problems, warnings)
    app = result.app
    if app is None:  # only unset credentials failed: build the app without the env check
        app = validate_app(folder, env=None).app
    return LoadedApp(result.name, app, None, (), warnings)


def _refuse_same_names(folders: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for folder in folders:
        name = folder.absolute().name
        if name in seen:
            raise ConfigError(
                f"the app folders {seen[name]} and {folder} have the same app name {name!r};"
                " they would share one state and one lock",
                hint="rename one folder (the folder name is the app name), or run them"
                " separately with --bots-dir",
            )
        seen[name] = folder


def _fails_load(diagnostic: Diagnostic) -> bool:
    """Errors fail loading, except unset variables of the endpoint and credentials in
    app.yaml: only a refresh needs those, and :func:`provisioner.connect.connect` reports them
    with a --no-refresh hint."""
    credential = (
        diagnostic.code == "env-missing"
        and diagnostic.path in REFRESH_FIELDS
        and Path(diagnostic.file).name == "app.yaml"
    )
    return diagnostic.severity == "error" and not credential


def _manifest_error(errors: Sequence[Diagnostic]) -> ManifestError:
    from provisioner.validate import diagnostic_order, unset_variable

    ordered = sorted(errors, key=diagnostic_order)
    lines = "\n".join(f"  {format_diagnostic(d)}" for d in ordered)
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    unset = [name for name in map(unset_variable, errors) if name is not None]
    if unset and len(unset) == len(errors):
        exports = " ".join(f"{name}=..." for name in dict.fromkeys(unset))
        hint = (
            f"the plan fingerprints every referenced secret: export {exports} (in CI, pass them"
            " as secrets), then run again"
        )
    else:
        hint = "fix them (`provisioner validate` shows the details), then run again"
    return ManifestError(f"the manifests have {count}:\n{lines}", hint=hint)


def format_diagnostic(diagnostic: Diagnostic) -> str:
    """``file:line:col: path: message`` (one line)."""
    where = f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}"
    field = f"{diagnostic.path}: " if diagnostic.path else ""
    return f"{where}: {field}{diagnostic.message}"


def state_backend_for(name_or_path: str, bots_dir: Path) -> FileBackend:
    """The state backend of an app named on the command line, even when its manifests are
    broken: ``state.path`` is read from its app.yaml when that parses, else the default."""
    folder = bots_dir / name_or_path
    if not folder.is_dir() and Path(name_or_path).is_dir():
        folder = Path(name_or_path)
    name = folder.absolute().name if folder.is_dir() else name_or_path
    settings = _state_settings(folder / "app.yaml")
    return backend_for(name, settings)


def _state_settings(app_yaml: Path) -> AppSettings | None:
    import yaml

    from provisioner.models import AppSettings, StateSettings

    try:
        data = yaml.safe_load(app_yaml.read_text(encoding="utf-8"))
        state = data.get("state") if isinstance(data, dict) else None
        path = state.get("path") if isinstance(state, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(path, str) or not path:
        return None
    return AppSettings(endpoint="local", state=StateSettings(path=path))
