"""A click group that imports a command's module only when that command runs."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
from click.shell_completion import CompletionItem


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
        return entry.load() if entry is not None else None

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
