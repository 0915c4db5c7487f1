"""Progress of a run over several apps (plan, apply's planning, export), on stderr.

- On a terminal: a live display (rich), one row per app that turns from "planning…" into
  the app's outcome, erased when the phase ends (the command's own output follows);
- elsewhere (CI logs), or without rich (the ``tty`` extra): one plain line per app as it
  finishes, ``planned demo: 1 to create``; beyond
  :data:`~provisioner.render.fleet.MANY_APPS` apps, only the apps with something to show, and
  at the end one line counting the others;
- a single app: nothing (its own output says it all).

A terminal is stderr being a TTY whose ``TERM`` is not ``dumb``; ``FORCE_COLOR`` gives colour
in logs but never a live display there. rich is imported only for the live display.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import click

from provisioner.cli.output import is_terminal, use_color
from provisioner.errors import ProvisionerError
from provisioner.extras import has_extra
from provisioner.render.fleet import has_news, is_fleet
from provisioner.render.plan import summary

if TYPE_CHECKING:
    from provisioner.apply.session import Session
    from provisioner.plan import Plan


_MARKS = {None: "[yellow]…[/yellow]", True: "[green]✓[/green]", False: "[red]✗[/red]"}


class Progress:
    """The quiet kind (one app): every method does nothing. A context manager."""

    def finished(self, name: str, outcome: str, ok: bool = True, quiet: bool = False) -> None:
        """App ``name`` is done: ``outcome`` is one line (``1 to create``, an error);
        ``quiet``: nothing to show (no changes, no drift)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class LineProgress(Progress):
    """One line per app on ``stream`` as it finishes: ``<verb> <app>: <outcome>``."""

    def __init__(self, verb: str, stream: TextIO, *, fleet: bool = False) -> None:
        self.verb = verb
        self.stream = stream
        self.fleet = fleet
        """Leave out the quiet apps' lines, and count them at the end."""
        self.quiet = 0
        self._lock = threading.Lock()

    def finished(self, name: str, outcome: str, ok: bool = True, quiet: bool = False) -> None:
        with self._lock:
            if self.fleet and ok and quiet:
                self.quiet += 1
                return
            click.echo(f"{self.verb} {name}: {outcome}", file=self.stream)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.quiet:
            click.echo(f"{self.verb} {self.quiet} more apps: no changes", file=self.stream)


class LiveProgress(Progress):
    """A live table on a terminal: one row per app, its state, how many are done."""

    def __init__(self, verb: str, names: Sequence[str], stream: TextIO) -> None:
        from rich.console import Console

        self.verb = verb
        self.names = list(names)
        self.states: dict[str, tuple[str, bool | None]] = {name: ("…", None) for name in names}
        self._lock = threading.Lock()
        self._console = Console(
            file=stream,
            force_terminal=True,
            no_color=not use_color(stream),
            highlight=False,
        )
        self._live: Any = None

    def _table(self) -> Any:
        from rich.table import Table

        done = sum(1 for _, ok in self.states.values() if ok is not None)
        table = Table.grid(padding=(0, 2))
        table.add_row(f"[bold]{self.verb}[/bold] {done} of {len(self.names)} apps")
        for name in self.names:
            outcome, ok = self.states[name]
            table.add_row(f"  {_MARKS[ok]} {name}: {outcome}")
        return table

    def finished(self, name: str, outcome: str, ok: bool = True, quiet: bool = False) -> None:
        with self._lock:
            self.states[name] = (outcome, ok)
            if self._live is not None:
                self._live.update(self._table(), refresh=True)

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(
            self._table(), console=self._console, transient=True, refresh_per_second=8
        )
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def progress_for(verb: str, names: Sequence[str], stream: TextIO | None = None) -> Progress:
    """The progress of a phase over ``names`` (see the module docstring)."""
    target = sys.stderr if stream is None else stream
    if len(names) < 2:
        return Progress()
    if is_terminal(target) and os.environ.get("TERM") != "dumb" and has_extra("tty"):
        return LiveProgress(verb, names, target)
    return LineProgress(verb, target, fleet=is_fleet(len(names)))


def watch_plans(session: Session, progress: Progress) -> None:
    """Report each app of ``session`` to ``progress`` as its plan (or error) is ready."""
    for run in session.runs:
        run.planned.add_done_callback(_reporter(run.app.name, progress))


def _reporter(name: str, progress: Progress) -> Callable[[Future[Plan]], None]:
    def report(future: Future[Plan]) -> None:
        outcome, ok = _planned(future)
        quiet = ok and not has_news(future.result().document)
        progress.finished(name, outcome, ok, quiet)

    return report


def _planned(future: Future[Plan]) -> tuple[str, bool]:
    error = future.exception()
    if error is None:
        plan = future.result()
        blocked = " (blocked)" if plan.is_blocked else ""
        return summary(plan.data) + blocked, True
    if isinstance(error, ProvisionerError):
        return f"error: {error.message.splitlines()[0]}", False
    return f"error ({type(error).__name__})", False
