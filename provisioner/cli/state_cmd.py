"""`provisioner state show|unlock`: inspect the recorded state, free a stale lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.cli.options import bots_dir_option

if TYPE_CHECKING:
    from provisioner.state import FileBackend


@click.group("state")
def command() -> None:
    """Inspect the recorded state of apps, or free a stale state lock."""


@command.command("show")
@click.argument("apps", nargs=-1)
@bots_dir_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text table for people, json for tools.",
)
def show(apps: tuple[str, ...], bots_dir: Path, output_format: str) -> int:
    """Print the bots recorded for each APP (default: every app under --bots-dir).

    Secrets are recorded only as salted fingerprints and shown as (sensitive).
    """
    backends = [_backend(app, bots_dir) for app in (apps or _all_app_names(bots_dir))]
    views = [_view(backend) for backend in backends]
    if output_format == "json":
        document = {"format_version": 1, "apps": views}
        click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo("\n".join(_text(view) for view in views), nl=False)
    return 0


@command.command("unlock")
@click.argument("app")
@bots_dir_option
@click.option("--force", is_flag=True, help="Remove the lock even if a live run holds it.")
def unlock(app: str, bots_dir: Path, force: bool) -> int:
    """Remove the state lock of APP left behind by a run that is gone."""
    from provisioner.errors import LockedError

    backend = _backend(app, bots_dir)
    if backend.is_locked() and not force:
        holder = backend.lock_holder()
        who = holder.describe() if holder else "a run that did not record itself"
        raise LockedError(
            f"the state lock of app {backend.app} is held by a live run: {who}",
            hint="wait for it or stop it; pass --force only if you are sure it is gone",
        )
    holder = backend.unlock()
    if holder is None:
        click.echo(f"app {backend.app}: no lock holder recorded; lock files removed")
    else:
        click.echo(f"app {backend.app}: removed the lock held by {holder.describe()}")
    return 0


def _backend(app: str, bots_dir: Path) -> FileBackend:
    from provisioner.workspace import state_backend_for

    return state_backend_for(app, bots_dir)


def _all_app_names(bots_dir: Path) -> list[str]:
    """App folders under ``bots_dir``, then state files in the default state folder."""
    from provisioner.errors import ConfigError
    from provisioner.state import DEFAULT_STATE_DIR

    names: list[str] = []
    if bots_dir.is_dir():
        from provisioner.validate import discover_apps

        names = [folder.absolute().name for folder in discover_apps([bots_dir])]
    state_dir = Path.cwd() / DEFAULT_STATE_DIR
    if state_dir.is_dir():
        names += sorted(p.stem for p in state_dir.glob("*.json") if p.stem not in names)
    if not names:
        raise ConfigError(
            f"no apps under {bots_dir} and no state files in {DEFAULT_STATE_DIR}",
            hint="run from the repository root, or pass --bots-dir or an app name",
        )
    return names


def _view(backend: FileBackend) -> dict[str, Any]:
    """What ``state show`` prints for one app (never the salt, never a secret)."""
    exists = backend.path.exists()
    state = backend.read() if exists else None
    holder = backend.lock_holder() if backend.is_locked() else None
    data = state.data if state is not None else None
    if data is not None:
        data.pop("salt", None)
    return {
        "app": backend.app,
        "path": _display(backend.path),
        "recorded": exists,
        "state": data,
        "lock": holder.data if holder is not None else None,
    }


def _display(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _text(view: dict[str, Any]) -> str:
    """One app: a header line, the lock holder if any, then a table of its bots."""
    state = view["state"]
    if state is None:
        lines = [f"App {view['app']}: no recorded state ({view['path']} does not exist)"]
    else:
        lines = [
            f"App {view['app']}: {len(state['bots'])} bot(s) recorded in {view['path']}"
            f" (serial {state['serial']}, lineage {state['lineage']})"
        ]
    if view["lock"] is not None:
        lock = view["lock"]
        lines.append(
            f"Locked by {lock['user']}@{lock['host']} pid {lock['pid']} ({lock['command']})"
            f" since {lock['started']}"
        )
    if state is not None and state["bots"]:
        rows: list[tuple[str, ...]] = [("USER ID", "NAME", "PROTECT", "INTEGRATIONS", "UPDATED AT")]
        rows += [_row(user_id, bot) for user_id, bot in sorted(state["bots"].items())]
        lines += ["", *_table(rows)]
    return "\n".join(lines) + "\n"


def _row(user_id: str, bot: dict[str, Any]) -> tuple[str, ...]:
    spec = bot["spec"]
    name = spec.get("name")
    shown_name = "(sensitive)" if isinstance(name, dict) else str(name or "")
    types = ", ".join(str(item.get("type")) for item in spec.get("integrations") or [])
    updated = bot.get("server", {}).get("updatedAt")
    return (
        user_id,
        shown_name,
        "yes" if bot.get("protect") else "no",
        types or "-",
        str(updated) if updated is not None else "-",
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(_width(row[index]) for row in rows) for index in range(len(rows[0]))]
    return [
        "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]


def _width(text: str) -> int:
    """Display width: East Asian wide characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
