"""App folders on disk: which folders are apps, their bot manifests, and how messages name paths.

An app folder holds ``app.yaml`` (the app settings) and one ``*.yaml``/``*.yml`` file per bot.
Nothing here reads a manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provisioner.diagnostics import display_path
from provisioner.errors import ConfigError
from provisioner.models import APP_FILE

MANIFEST_SUFFIXES = (".yaml", ".yml")


def display_child(folder_shown: str, name: str) -> str:
    """``display_path(folder / name)`` from the folder's display path (no cwd lookup)."""
    return name if folder_shown == "." else f"{folder_shown}/{name}"


def is_app_folder(folder: Path) -> bool:
    """An app folder holds ``app.yaml`` or at least one ``*.yaml``/``*.yml`` manifest."""
    return folder.is_dir() and any(
        child.is_file() and child.suffix in MANIFEST_SUFFIXES for child in folder.iterdir()
    )


def discover_apps(paths: Sequence[Path]) -> list[Path]:
    """The app folders named by ``paths``, in order, without duplicates.

    A path may be an app folder or a folder of app folders (the bots root, ``bots``).
    Raises ConfigError for a path that does not exist, is a file, or holds no app folder.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for folder in _apps_under(path):
            if folder.absolute() not in seen:
                seen.add(folder.absolute())
                found.append(folder)
    return found


def app_folders_of(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each file replaced by the folder holding it, without duplicates.

    For ``validate --expand-files`` (the pre-commit hook): a commit touching one manifest
    validates its whole app folder, once however many of its files were touched, since
    the cross-file rules (unique ``userId``, 10 bots) need every file of the app.
    """
    folders: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        folder = path.parent if path.is_file() else path
        if folder.absolute() not in seen:
            seen.add(folder.absolute())
            folders.append(folder)
    return folders


def _apps_under(path: Path) -> list[Path]:
    shown = display_path(path)
    if not path.exists():
        raise ConfigError(
            f"{shown} does not exist",
            hint="pass the bots folder (default: bots) or an app folder such as bots/demo",
        )
    if not path.is_dir():
        parent = display_path(path.parent)
        raise ConfigError(
            f"{shown} is a file; validate works on app folders",
            hint=f"pass its app folder instead: provisioner validate {parent}",
        )
    if is_app_folder(path):
        return [path]
    apps = sorted(
        child for child in path.iterdir() if not child.name.startswith(".") and is_app_folder(child)
    )
    if not apps:
        raise ConfigError(
            f"no app folders found in {shown}",
            hint=f"create {shown}/<app>/app.yaml and one YAML file per bot",
        )
    return apps


def bot_files(folder: Path) -> list[Path]:
    """The bot manifests of an app folder, sorted: every ``*.yaml``/``*.yml`` but app.yaml."""
    return sorted(
        child
        for child in folder.iterdir()
        if child.suffix in MANIFEST_SUFFIXES
        and child.name not in (APP_FILE, "app.yml")
        and not child.name.startswith(".")
        and (child.is_file() or child.is_symlink())  # a broken link is reported, not skipped
    )
