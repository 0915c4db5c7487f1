"""The apps of a command line: which app folders the arguments name, loading them into
validated DesiredApps (every error of every app in one ManifestError), and the state backend
of an app named on the command line even when its bot manifests are broken.

The CLI commands that load manifests (``plan``, ``apply``, ...) all go through here, so they
resolve and load apps the same way. Some commands read ``app.yaml`` alone, and this is the one
place that does (:func:`_read_app_yaml`: the project's loader, bounded in size, depth and
aliases, and the same schema and messages as ``validate``):

- ``api``, ``sign`` and ``export`` need only the app's settings (:func:`load_settings`): its
  bots may be broken, a direct call does not need them;
- the state commands (``state show``, ``unlock``, ``pull``, ``push``, ``forget``) read only the
  ``state`` block (:func:`state_settings`): a missing ``app.yaml`` means the default file
  backend; an unreadable one, or an invalid ``state`` block, is a ConfigError, since guessing
  could point a command at the wrong store.

Sharding (``--shard I/N`` of plan, apply, drift and their ``github`` forms, so a repository
with hundreds of apps fans out over a CI matrix): job I of N takes the apps with
``shard_of(app, N) == I``. The hash is the first 8 bytes of SHA-256 of the app name (UTF-8),
as an unsigned big-endian integer, modulo N, plus one: stable across processes, machines and
Python versions (unlike ``hash``), and independent of which other apps exist, so adding an app
never moves another.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from provisioner.diagnostics import Diagnostic
from provisioner.errors import ConfigError, ManifestError
from provisioner.manifest import Document, load_document
from provisioner.models import (
    LOCAL_ENDPOINT,
    AppSettings,
    DesiredApp,
    FileStateSettings,
    is_notify_field,
)
from provisioner.render.safe import terminal_safe
from provisioner.secrets import referenced_values
from provisioner.secrets.bundle import BUNDLE_VARIABLE
from provisioner.state.backends import backend_for
from provisioner.validate import (
    APP_FILE,
    check_document,
    diagnostic_order,
    discover_apps,
    display_path,
    unset_variable,
    validate_app,
)

if TYPE_CHECKING:
    from provisioner.state.backend import StateBackend

CREDENTIAL_FIELDS = frozenset({"appKey", "appSecret"})
REFRESH_FIELDS = CREDENTIAL_FIELDS | {"endpoint"}
"""Settings only a refresh (an API call) needs: their unset variables do not fail loading."""
READ_DSN_FIELD = "state.readDsn"
"""Only the read-only commands use it, and only when its variables are set: never a load
failure."""


def resolve_app_folders(names_or_paths: Sequence[str], bots_dir: Path) -> list[Path]:
    """App folders for the command-line arguments: an app name under ``bots_dir`` or a path
    to an app folder; no arguments means every app folder under ``bots_dir``."""
    if not names_or_paths:
        if not bots_dir.is_dir():
            raise ConfigError(
                f"no bots directory {bots_dir}",
                hint="run inside the repository (bots/ is found up to its root), or pass"
                " --bots-dir or an app folder",
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
    secrets: tuple[str, ...] = ()
    """The values of every ``${NAME}`` the app references: never to be printed."""


def load_each(
    names_or_paths: Sequence[str],
    bots_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    require_secrets: bool = True,
    shard: tuple[int, int] | None = None,
) -> list[LoadedApp]:
    """Load and validate each app named on the command line (see
    :func:`resolve_app_folders`), on its own: one app's broken manifests do not stop another.
    ``require_secrets``: an unset or empty variable a bot references is an error of its app
    (False for a plan, which does not need them). ``shard`` ``(I, N)``: only the apps of job
    I of N (:func:`shard_of`).

    ConfigError when an argument names no app, or two folders have the same app name (they
    would share state and lock).
    """
    environ = os.environ if env is None else env
    folders = resolve_app_folders(names_or_paths, bots_dir)
    _refuse_same_names(folders)
    if shard is not None:
        index, count = shard
        folders = [f for f in folders if shard_of(f.absolute().name, count) == index]
    return [_load_one(folder, environ, require_secrets) for folder in folders]


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


def _load_one(folder: Path, env: Mapping[str, str], require_secrets: bool) -> LoadedApp:
    result = validate_app(folder, env=env if require_secrets else None)
    problems = tuple(d for d in result.diagnostics if _fails_load(d))
    warnings = tuple(d for d in result.diagnostics if d.severity == "warning")
    if problems:
        problems += _unset_for_calls(folder, result.diagnostics)
        return LoadedApp(result.name, None, _manifest_error(problems), problems, warnings)
    app = result.app
    if app is None:  # only unset credentials failed: build the app without the env check
        app = validate_app(folder, env=None).app
    secrets = tuple(referenced_values(app.reference_texts(), env)) if app is not None else ()
    return LoadedApp(result.name, app, None, (), warnings, secrets)


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
    app.yaml (only a refresh needs those, and :func:`provisioner.connect.connect` reports them
    with a --no-refresh hint), of ``state.readDsn`` (optional) and of ``notify`` (a target
    that cannot be reached is a warning of the run)."""
    unset_setting = (
        diagnostic.code == "env-missing"
        and (
            diagnostic.path in (*REFRESH_FIELDS, READ_DSN_FIELD) or is_notify_field(diagnostic.path)
        )
        and Path(diagnostic.file).name == APP_FILE
    )
    return diagnostic.severity == "error" and not unset_setting


def _unset_for_calls(folder: Path, diagnostics: Sequence[Diagnostic]) -> tuple[Diagnostic, ...]:
    """The unset variables of app.yaml's endpoint and credentials, listed with an app's
    other errors so that one message names every variable an apply needs; none for an app
    whose endpoint is ``local`` (the emulator makes its own credentials)."""
    unset = tuple(
        d
        for d in diagnostics
        if d.code == "env-missing" and d.path in REFRESH_FIELDS and Path(d.file).name == APP_FILE
    )
    if not unset or any(d.path == "endpoint" for d in unset):
        return unset
    document, _ = _read_app_yaml(folder / APP_FILE)
    local = document.loaded and document.value.get("endpoint") == LOCAL_ENDPOINT
    return () if local else unset


def _manifest_error(errors: Sequence[Diagnostic]) -> ManifestError:
    ordered = sorted(errors, key=diagnostic_order)
    lines = "\n".join(f"  {format_diagnostic(d)}" for d in ordered)
    count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
    unset = [name for name in map(unset_variable, ordered) if name is not None]
    if unset and len(unset) == len(errors):
        exports = " ".join(f"{name}=..." for name in dict.fromkeys(unset))
        hint = (
            f"the plan fingerprints every referenced secret: export {exports} (in CI, add them"
            f" to the {BUNDLE_VARIABLE} bundle; `provisioner github secrets` lists what each app"
            " needs), then run again"
        )
    else:
        hint = "fix them (`provisioner validate` shows the details), then run again"
    return ManifestError(f"the manifests have {count}:\n{lines}", hint=hint)


def format_diagnostic(diagnostic: Diagnostic) -> str:
    """``file:line:col: path: message`` (one line)."""
    where = f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}"
    field = f"{diagnostic.path}: " if diagnostic.path else ""
    return terminal_safe(f"{where}: {field}{diagnostic.message}")


# --- sharding: which of N jobs takes an app -------------------------------------

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(app: str, count: int) -> int:
    """The shard (1..count) that plans ``app`` when the apps are split over ``count`` jobs."""
    if count < 1:
        raise ConfigError(f"the shard count must be at least 1, not {count}")
    digest = hashlib.sha256(app.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; ConfigError unless 1 ≤ I ≤ N."""
    match = _SHARD.match(text)
    index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= index <= count:
        raise ConfigError(
            f"--shard {text!r} is not of the form I/N with 1 ≤ I ≤ N",
            hint="give each matrix job its own I of the same N, e.g. --shard 1/4 ... --shard 4/4",
        )
    return index, count


def apps_in_shard(apps: Sequence[str], index: int, count: int) -> list[str]:
    """The apps among ``apps`` that shard ``index`` of ``count`` plans, in their order."""
    return [app for app in apps if shard_of(app, count) == index]


# --- app.yaml alone: the settings of an app named on the command line -----------------------


def app_folder(name_or_path: str, bots_dir: Path) -> tuple[str, Path]:
    """The app name and folder for a command-line argument: an app name under ``bots_dir``
    or the path to an app folder (the folder need not exist)."""
    folder = bots_dir / name_or_path
    if not folder.is_dir() and Path(name_or_path).is_dir():
        folder = Path(name_or_path)
    name = folder.absolute().name if folder.is_dir() else name_or_path
    return name, folder


def state_backend_for(
    name_or_path: str,
    bots_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    read_only: bool = False,
) -> StateBackend:
    """The state backend of an app named on the command line (``read_only``: for a command
    that never locks or writes, see :func:`provisioner.state.backends.backend_for`)."""
    name, folder = app_folder(name_or_path, bots_dir)
    return backend_for(name, state_settings(folder / APP_FILE), env=env, read_only=read_only)


def state_settings(app_yaml: Path) -> AppSettings | None:
    """The settings holding ``app_yaml``'s ``state`` block (None without an app.yaml)."""
    if not app_yaml.exists() and not app_yaml.is_symlink():
        return None
    document, errors = _read_app_yaml(app_yaml)
    if not document.loaded:
        raise _settings_error(document.file, [format_diagnostic(d) for d in document.diagnostics])
    state = document.value.get("state")
    if state is None:
        return AppSettings(endpoint="local", state=FileStateSettings())
    problems = [
        format_diagnostic(d) for d in errors if d.path == "state" or d.path.startswith("state.")
    ]
    if problems:
        raise _settings_error(document.file, problems)
    try:
        return AppSettings.model_validate({"endpoint": "local", "state": state})
    except ValidationError as exc:  # pragma: no cover - the schema check above agrees
        raise _settings_error(document.file, [str(exc)]) from exc


def _settings_error(shown: str, problems: list[str]) -> ConfigError:
    lines = "\n".join(f"  {line}" for line in problems)
    return ConfigError(
        f"cannot read the state settings of {shown}:\n{lines}",
        hint=f"fix them (`provisioner validate {Path(shown).parent.as_posix()}` shows the"
        " details), then run again",
    )


def load_settings(folder: Path, env: Mapping[str, str]) -> DesiredApp:
    """The app of ``folder`` from its ``app.yaml`` alone (no bots). ManifestError listing
    every problem of app.yaml (``file:line:col: field: message``) but the unset variables
    only a call needs, which :func:`provisioner.connect.credentials` reports."""
    path = folder / APP_FILE
    if not path.is_file():
        raise ConfigError(
            f"{display_path(path)} does not exist",
            hint="create it with `provisioner init APP`, or give another app",
        )
    document, problems = _read_app_yaml(path, env)
    unset = [d for d in problems if d.code == "env-missing" and d.path in REFRESH_FIELDS]
    if problems and len(unset) < len(problems):
        lines = "\n".join(f"  {format_diagnostic(d)}" for d in problems)
        raise ManifestError(
            f"{document.file} has {len(problems)} error(s):\n{lines}",
            hint="fix them (`provisioner validate` shows the details), then run again",
        )
    try:
        settings = AppSettings.model_validate(document.value)
    except ValidationError as exc:  # the schema accepted it: a disagreement is a bug
        raise ManifestError(
            f"{document.file} is not valid app settings",
            hint="run `provisioner validate` and report this bug",
        ) from exc
    return DesiredApp(
        name=folder.absolute().name,
        folder=folder,
        settings=settings,
        bots=(),
        sources={},
        settings_at={key: document.location((key,)) for key in document.value},
    )


def _read_app_yaml(
    path: Path, env: Mapping[str, str] | None = None
) -> tuple[Document, list[Diagnostic]]:
    """``path`` loaded alone, and its errors as ``validate`` finds them (with ``env``: every
    variable it references must be set)."""
    document = load_document(path, display_path(path))
    return document, [d for d in check_document(document, "app", env=env) if d.severity == "error"]
