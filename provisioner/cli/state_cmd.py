"""`provisioner state show|unlock|pull|push|forget`: inspect, free, move and edit the
recorded state of apps, on every backend (file, git, postgres). See docs/state.md."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from provisioner.cli.options import bots_dir_option, env_file_option, lock_timeout_option
from provisioner.errors import ConfigError, LockedError, StateError
from provisioner.render.safe import terminal_safe
from provisioner.state import DEFAULT_STATE_DIR, RecordedApp, StateBackend
from provisioner.state.backend import lock_waiting
from provisioner.state.codec import dumps_state, parse_state, read_state_file
from provisioner.state.file.lock import is_lock_file
from provisioner.state.holder import format_utc
from provisioner.state.model import RECORDED_AT
from provisioner.state.transfer import decide_push, forget_bots
from provisioner.state.unsaved import UNSAVED_STATE_DIR
from provisioner.validate import discover_apps
from provisioner.workspace import state_backend_for

_HIDDEN_HOLDER_KEYS = ("token", "boot_id")


@click.group("state")
def command() -> None:
    """Inspect, free, move or edit the recorded state of apps."""


@command.command("show")
@click.argument("apps", nargs=-1)
@bots_dir_option
@env_file_option
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
    names = apps or _all_app_names(bots_dir)
    backends = [_backend(app, bots_dir, read_only=True) for app in names]
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
@env_file_option
@click.option("--force", is_flag=True, help="Remove the lock even if a live run holds it.")
def unlock(app: str, bots_dir: Path, force: bool) -> int:
    """Remove the state lock of APP left behind by a run that is gone."""
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


@command.command("pull")
@click.argument("app")
@bots_dir_option
@env_file_option
def pull(app: str, bots_dir: Path) -> int:
    """Print the recorded state of APP (the state JSON document) on standard output.

    Takes no lock and writes nothing. With `state push`, moves a state between backends.
    """
    click.echo(dumps_state(_recorded(_backend(app, bots_dir, read_only=True))), nl=False)
    return 0


@command.command("push")
@click.argument("app")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@bots_dir_option
@env_file_option
@lock_timeout_option
@click.option("--force", is_flag=True, help="Replace an older state or another lineage.")
def push(app: str, file: Path, bots_dir: Path, lock_timeout: float | None, force: bool) -> int:
    """Store the state in FILE as the recorded state of APP (compare-and-swap).

    Refuses, without --force, a state of another lineage or an older serial than the stored
    one, and says which bot records it would lose. Finishes an apply whose state could not be
    stored (its error names the FILE), or moves a state to another backend.
    """
    raw = read_state_file(file, str(file))
    if raw is None:
        raise click.BadParameter(f"{file} does not exist", param_hint="FILE")
    pushed = parse_state(raw, str(file))
    backend = _backend(app, bots_dir)
    with lock_waiting(backend, "provisioner state push", lock_timeout):
        decision = decide_push(
            backend.app, backend.describe(), backend.read_recorded(), pushed, force=force
        )
        if decision.write is not None:
            backend.write(decision.write, expected_serial=decision.expected)
    if decision.write is None:
        click.echo(f"app {backend.app}: {backend.describe()} already holds this state")
    else:
        state = decision.write
        forced = f" (forced over serial {decision.expected})" if decision.forced else ""
        click.echo(
            f"app {backend.app}: stored serial {state.serial} (lineage {state.lineage}) in"
            f" {backend.describe()}{forced}"
        )
    _remove_if_unsaved(file, backend.app)
    return 0


@command.command("forget")
@click.argument("app")
@click.argument("user_ids", nargs=-1, required=True)
@bots_dir_option
@env_file_option
@lock_timeout_option
def forget(app: str, user_ids: tuple[str, ...], bots_dir: Path, lock_timeout: float | None) -> int:
    """Stop managing the bots USER_IDS of APP without deleting them.

    Their records are dropped from the state in one write; the bots stay on the server and
    the next plan with refresh lists them as unmanaged. Remove their manifests first, or the
    next plan adopts them again.
    """
    backend = _backend(app, bots_dir)
    with lock_waiting(backend, "provisioner state forget", lock_timeout):
        state = forget_bots(_recorded(backend), user_ids)
        backend.write(state)
    click.echo(
        f"app {backend.app}: forgot {', '.join(user_ids)} (serial {state.serial}); the bots"
        " stay on the server, and the next refresh lists them as unmanaged"
    )
    return 0


def _backend(app: str, bots_dir: Path, *, read_only: bool = False) -> StateBackend:
    """``read_only`` (show, pull): a postgres state reads through ``state.readDsn``."""
    return state_backend_for(app, bots_dir, read_only=read_only)


def _recorded(backend: StateBackend) -> RecordedApp:
    state = backend.read_recorded()
    if state is None:
        raise StateError(
            f"app {backend.app} has no recorded state in {backend.describe()}",
            hint="check the app name and its state settings in app.yaml (`provisioner state"
            " show` lists what is recorded)",
        )
    return state


def _remove_if_unsaved(file: Path, app: str) -> None:
    """A file that an apply saved because it could not store it is done with once pushed."""
    unsaved = (Path.cwd() / UNSAVED_STATE_DIR).resolve()
    if file.resolve().parent == unsaved and file.exists():
        file.unlink()
        click.echo(f"app {app}: removed {file}, which is stored now")


def _all_app_names(bots_dir: Path) -> list[str]:
    """App folders under ``bots_dir``, then state files in the default state folder (never a
    lock file, a holder record or a scratch file)."""
    names: list[str] = []
    if bots_dir.is_dir():
        names = [folder.absolute().name for folder in discover_apps([bots_dir])]
    state_dir = Path.cwd() / DEFAULT_STATE_DIR
    if state_dir.is_dir():
        names += sorted(
            path.stem
            for path in state_dir.glob("*.json")
            if not is_lock_file(path) and not path.name.startswith(".") and path.stem not in names
        )
    if not names:
        raise ConfigError(
            f"no apps under {bots_dir} and no state files in {DEFAULT_STATE_DIR}",
            hint="run from the repository root, or pass --bots-dir or an app name",
        )
    return names


def _view(backend: StateBackend) -> dict[str, Any]:
    """What ``state show`` prints for one app (never the salt, never a secret)."""
    state = backend.read_recorded()
    holder = backend.lock_holder() if backend.is_locked() else None
    data = None if state is None else {k: v for k, v in state.data.items() if k != "salt"}
    lock = None
    if holder is not None:
        lock = {key: value for key, value in holder.data.items() if key not in _HIDDEN_HOLDER_KEYS}
    return {
        "app": backend.app,
        "backend": backend.kind,
        "path": backend.describe(),
        "recorded": state is not None,
        "state": data,
        "lock": lock,
        "lock_holder": holder.describe() if holder is not None else None,
    }


def _text(view: dict[str, Any]) -> str:
    """One app: a header line, the lock holder if any, then a table of its bots."""
    state = view["state"]
    if state is None and view["backend"] == "file":
        lines = [f"App {view['app']}: no recorded state ({view['path']} does not exist)"]
    elif state is None:
        lines = [f"App {view['app']}: no recorded state in {view['path']}"]
    else:
        lines = [
            f"App {view['app']}: {len(state['bots'])} bot(s) recorded in {view['path']}"
            f" (serial {state['serial']}, lineage {state['lineage']})"
        ]
    if state is not None and state.get("last_run"):
        lines.append(f"Last written by {state['last_run']}")
    if view["lock_holder"] is not None:
        lines.append(f"Locked by {view['lock_holder']}")
    if state is not None and state["bots"]:
        rows: list[tuple[str, ...]] = [("USER ID", "NAME", "PROTECT", "INTEGRATIONS", "UPDATED AT")]
        rows += [_row(user_id, bot) for user_id, bot in sorted(state["bots"].items())]
        lines += ["", *_table(rows)]
    return "".join(terminal_safe(line) + "\n" for line in lines)


def _row(user_id: str, bot: dict[str, Any]) -> tuple[str, ...]:
    spec = bot["spec"]
    name = spec.get("name")
    shown_name = "(sensitive)" if isinstance(name, dict) else str(name or "")
    types = ", ".join(str(item.get("type")) for item in spec.get("integrations") or [])
    return (
        user_id,
        shown_name,
        "yes" if bot.get("protect") else "no",
        types or "-",
        _updated_at(bot.get("server", {})),
    )


def _updated_at(server: dict[str, Any]) -> str:
    """The server's ``updatedAt`` (epoch milliseconds, or seconds) as ISO 8601 UTC, else when
    the apply recorded the bot, else ``-`` (a state written before either was kept)."""
    updated = server.get("updatedAt")
    if isinstance(updated, int | float) and not isinstance(updated, bool) and updated > 0:
        seconds = updated / 1000 if updated > 10**11 else updated
        return format_utc(datetime.fromtimestamp(seconds, UTC))
    recorded = server.get(RECORDED_AT)
    return recorded if isinstance(recorded, str) and recorded else "-"


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
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
