"""A click group that imports a command's module only when that command runs; the
environment variable of every option; and running from the project root.

From any folder inside the repository: when the working directory has no ``bots/``, a
command runs from the nearest folder above that has one, up to the git root
(:func:`find_project_root`), unless ``--bots-dir`` (or ``validate PATH``) is given; paths
typed on the command line keep their meaning (made absolute first).

Every option can be set from the environment as ``PROVISIONER_<COMMAND>_<OPTION>``, named
after its long flag (click's ``auto_envvar_prefix`` convention, but from the flag rather than
the Python parameter name): ``PROVISIONER_PLAN_FORMAT=json``,
``PROVISIONER_GITHUB_PLAN_TRUSTED_LOGIN=bot``, ``PROVISIONER_APPLY_LOCK_TIMEOUT=5m``,
``PROVISIONER_DEBUG=1``. A flag takes 1/true/yes/on or 0/false/no/off; a command-line option
wins over its variable. Options that name their own variable keep it.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

ENV_PREFIX = "PROVISIONER"
_NO_VARIABLE = frozenset({"help", "version"})


def with_envvars(command: click.Command, path: tuple[str, ...]) -> click.Command:
    """``command`` (and its subcommands) with each option reading ``PATH_..._FLAG`` from the
    environment (module docstring); idempotent."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar is None:
            if param.name in _NO_VARIABLE:
                continue
            flag = max(param.opts, key=len).lstrip("-")
            param.envvar = "_".join((*path, flag)).upper().replace("-", "_")
            param.allow_from_autoenv = False
    if isinstance(command, click.Group):
        for name, subcommand in command.commands.items():
            with_envvars(subcommand, (*path, name))
    return command


BOTS_DIR = Path("bots")
"""The default folder of app folders (``--bots-dir``), relative to the project root."""
_USER_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def find_project_root(start: Path) -> Path | None:
    """The folder to run from when ``start`` has no ``bots/``: the nearest ancestor that has
    one, searching upward no further than the git repository's root (as pre-commit and ruff
    look for their configuration). None when ``start`` has ``bots/``, or outside a git
    repository, or when no folder up to its root has one."""
    start = start.absolute()
    if (start / BOTS_DIR).is_dir():
        return None
    chain = [start, *start.parents]
    tops = [index for index, folder in enumerate(chain) if (folder / ".git").exists()]
    if not tops:
        return None
    above = chain[1 : tops[0] + 1]
    return next((folder for folder in above if (folder / BOTS_DIR).is_dir()), None)


_STAY = ("bots_dir", "paths")
"""Given by the user, these keep a command where it was started: ``--bots-dir``, and
``validate PATH...`` (it reads only those paths, and names them as given)."""
_APP_ARGUMENTS = frozenset({"app", "apps"})
"""Arguments that take an app name or the path to an app folder."""


def from_project_root(command: click.Command) -> click.Command:
    """``command`` (and its subcommands) run from the project root when started in a folder
    below it (:func:`provisioner.workspace.find_project_root`) and no ``--bots-dir`` is
    given: the paths the user typed are made absolute first, so they keep their meaning,
    and the working directory is restored afterwards. Idempotent."""
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            from_project_root(subcommand)
    elif command.callback is not None and not hasattr(command.callback, "__rooted__"):
        command.callback = _rooted(command.callback)
    return command


def _rooted(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **params: Any) -> Any:
        ctx = click.get_current_context()
        here = Path.cwd()
        given = any(ctx.get_parameter_source(name) in _USER_GIVEN for name in _STAY)
        root = None if given else find_project_root(here)
        if root is None:
            return callback(*args, **params)
        for name, value in params.items():
            if ctx.get_parameter_source(name) in _USER_GIVEN:
                params[name] = _anchored(name, value, here)
        os.chdir(root)
        try:
            return callback(*args, **params)
        finally:
            os.chdir(here)

    run.__rooted__ = True  # type: ignore[attr-defined]
    return run


def _anchored(name: str, value: Any, here: Path) -> Any:
    """``value`` with relative paths made absolute against ``here``: Path values, and app
    arguments written as paths (``.``, ``..``, anything with a slash)."""
    if isinstance(value, tuple):
        return tuple(_anchored(name, item, here) for item in value)
    if isinstance(value, Path):
        return value if value.is_absolute() else here / value
    path_like = isinstance(value, str) and (value in (".", "..") or "/" in value or os.sep in value)
    if name in _APP_ARGUMENTS and path_like:
        return str(here / value)
    return value


@dataclass(frozen=True)
class Entry:
    """Where a command lives (a module of ``provisioner.cli`` whose ``command`` it is) and its
    summary (the command's ``get_short_help_str`` without a length limit), so listing the
    commands imports none of them."""

    module: str
    summary: str

    def shortened(self, limit: int) -> str:
        """The summary cut to ``limit`` characters by click's own rule."""
        return click.Command(None, help=self.summary).get_short_help_str(limit)

    def load(self) -> click.Command:
        command = importlib.import_module(f"provisioner.cli.{self.module}").command
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"provisioner.cli.{self.module}.command is not a click command")
        return command


class LazyGroup(click.Group):
    """``commands_dict``: name → :class:`Entry`. ``--help`` lists the entries' short help;
    resolving a name (running it, or its own ``--help``) imports its module."""

    def __init__(self, *args: Any, commands_dict: Mapping[str, Entry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entries = dict(commands_dict)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.entries)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.entries.get(cmd_name)
        if entry is None:
            return None
        return from_project_root(with_envvars(entry.load(), (ENV_PREFIX, cmd_name)))

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from the entries (importing none of them; the summary cut as click
        cuts it), then the group's own options as click completes them."""
        names = [
            CompletionItem(name, help=entry.shortened(45))
            for name, entry in sorted(self.entries.items())
            if name.startswith(incomplete)
        ]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the summaries: shortened to the width click would give them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = [(name, self.entries[name].shortened(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
