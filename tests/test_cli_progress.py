"""Progress of multi-app runs: a live display on a terminal, one plain line per app in a
log, nothing for one app (no wall-clock assertions)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.cli.progress import LineProgress, LiveProgress, Progress, progress_for
from tests.test_cli_plan import workdir, write_app

__all__ = ["workdir"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_kind_of_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert type(progress_for("planned", ["a"], Terminal())) is Progress
    assert type(progress_for("planned", ["a", "b"], io.StringIO())) is LineProgress
    assert type(progress_for("planned", ["a", "b"], Terminal())) is LiveProgress
    monkeypatch.setenv("TERM", "dumb")
    assert type(progress_for("planned", ["a", "b"], Terminal())) is LineProgress


def test_the_live_display_shows_every_app_and_erases_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Terminal()
    with progress_for("planned", ["staging", "production"], screen) as progress:
        progress.finished("production", "2 to create")
        progress.finished("staging", "error: no app", False)
    text = screen.getvalue()
    assert "planned\x1b[0m 2 of 2 apps" in text
    assert "✓ production: 2 to create" in text and "✗ staging: error: no app" in text
    assert "\x1b[2K" in text  # transient: the rows are cleared when the phase ends


def test_a_log_gets_one_line_per_app(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_app(workdir, "staging")
    write_app(workdir, "production", bots=("a-bot", "b-bot"))
    assert main(["plan", "--no-refresh"]) == 0
    err = capsys.readouterr().err
    assert sorted(err.splitlines()) == [
        "planned production: 2 to create",
        "planned staging: 1 to create",
    ]
    assert main(["plan", "staging", "--no-refresh"]) == 0
    assert capsys.readouterr().err == ""  # one app: no progress lines
