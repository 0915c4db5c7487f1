"""Printing helpers shared by the commands, and the guard on the streams: no secret value and
no unencodable character gets through.

Colour: on a terminal only, unless ``FORCE_COLOR`` is set (not empty: CI logs that render
colour); never when ``NO_COLOR`` is set (not empty), which wins over ``FORCE_COLOR``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from provisioner.diagnostics import Diagnostic, diagnostic_order
from provisioner.errors import ConfigError
from provisioner.http import API_LOGGER
from provisioner.render.diagnostics import render_text
from provisioner.render.safe import terminal_safe
from provisioner.secrets import Redactor

if TYPE_CHECKING:
    from provisioner.workspace import LoadedApp

STATE_LOGGER = "provisioner.state"
"""Where the state backends log what the user must be told (a lock taken over, ...)."""
_SEVERITY_COLORS = {"error": "red", "warning": "yellow"}


def is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_color(stream: object = None) -> bool:
    """Colour for a terminal or with ``FORCE_COLOR``; never with ``NO_COLOR`` (module doc)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(sys.stdout if stream is None else stream)


def styled_severity(text: str, severity: str, color: bool) -> str:
    """``text`` in the colour of ``severity`` (error red, warning yellow) when ``color``."""
    return click.style(text, fg=_SEVERITY_COLORS.get(severity), bold=True) if color else text


def echo_diagnostics(diagnostics: Iterable[Diagnostic], *, err: bool = False) -> None:
    """Diagnostics in validate's text format (``file:line:col: severity: path: message``)."""
    ordered = sorted(diagnostics, key=diagnostic_order)
    if not ordered:
        return
    color = use_color(sys.stderr if err else sys.stdout)
    text = render_text(ordered, style=lambda part, severity: styled_severity(part, severity, color))
    click.echo(text, err=err, color=color)


def echo_load_warnings(loaded: Sequence[LoadedApp]) -> None:
    """The validation warnings of the apps a command loaded, on stderr."""
    echo_diagnostics((warning for each in loaded for warning in each.warnings), err=True)


def echo_error(message: str, *, hint: str | None = None) -> None:
    """``error: message`` then ``  hint: ...`` on stderr."""
    color = use_color(sys.stderr)
    label = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{label} {terminal_safe(message, keep_newlines=True)}", err=True, color=color)
    if hint:
        click.echo(f"  hint: {terminal_safe(hint, keep_newlines=True)}", err=True)


def echo_app_error(app: str, message: str, *, hint: str | None = None) -> None:
    """``error: app NAME: message`` — unless the message already names the app."""
    named = f"app {app}" in message
    echo_error(message if named else f"app {app}: {message}", hint=hint)


# --- what never reaches a stream ---------------------------------------------------------------

_MASKED: set[str] = set()
"""Secret values of the run (every ``${NAME}`` value of the apps loaded): redacted from
everything written to stdout and stderr while :func:`guarded_streams` is active."""
_REDACTOR: list[Redactor] = [Redactor(())]
"""The redactor of :data:`_MASKED` as it is now (made again when it changes)."""


def mask(values: Iterable[str]) -> None:
    """Never print any of ``values`` (from here to the end of the command)."""
    _MASKED.update(value for value in values if value)
    _REDACTOR[0] = Redactor(_MASKED)


class _GuardedStream(io.TextIOBase):
    """A text stream that writes through to ``stream`` with every masked value redacted and
    every character the stream cannot encode escaped (``\\udcff`` from an undecodable folder
    name, Chinese on an ASCII terminal), instead of failing. It deliberately has no
    ``buffer``, so nothing (click included) writes around it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str | bytes) -> int:
        """Write ``text``; bytes (click writes the shell-completion script as bytes) are
        decoded as UTF-8 first, so they pass the same redaction. Empty bytes are refused:
        that is click's probe for a binary stream, and this one must stay a text stream
        (else click wraps it with ``errors="replace"`` and escaping is lost)."""
        if isinstance(text, bytes | bytearray):
            if not text:
                raise TypeError("a text stream: write str (or non-empty UTF-8 bytes)")
            self._write_text(bytes(text).decode("utf-8", "replace"))
            return len(text)
        return self._write_text(text)

    def _write_text(self, text: str) -> int:
        safe = _REDACTOR[0](text) if _MASKED else text
        try:
            self._stream.write(safe)
        except UnicodeEncodeError:
            encoding = getattr(self._stream, "encoding", None) or "utf-8"
            self._stream.write(safe.encode(encoding, "backslashreplace").decode(encoding))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)


def echo_workflow_masks(commands: str) -> None:
    """Print ``::add-mask::VALUE`` lines (:func:`provisioner.github.actions.mask_commands`)
    on stdout past the redaction: the runner must see the value to hide it from every later
    line of the job's log, and it never shows these lines. Refuses any other text."""
    lines = commands.splitlines()
    if not all(line.startswith("::add-mask::") for line in lines):
        raise ValueError("echo_workflow_masks prints ::add-mask:: commands only")
    stream = sys.stdout
    stream.flush()
    target = stream._stream if isinstance(stream, _GuardedStream) else stream
    target.write(commands)
    target.flush()


@contextmanager
def guarded_streams() -> Iterator[None]:
    """For one command: stdout and stderr redact every masked value and never fail on an
    unencodable character; the mask starts empty and is emptied at the end."""
    saved = sys.stdout, sys.stderr
    _MASKED.clear()
    _REDACTOR[0] = Redactor(())
    sys.stdout, sys.stderr = _GuardedStream(saved[0]), _GuardedStream(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved
        _MASKED.clear()
        _REDACTOR[0] = Redactor(())


# --- notices of the state backends ------------------------------------------------------------


def write_output_file(path: Path, text: str, what: str) -> None:
    """Write a file the user asked for (``--out``, ``--results-out``); ConfigError naming
    ``what`` (``the plan to <path>``) when it cannot be written."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what}: {exc.strerror}",
            hint="check that the folder exists and is writable",
        ) from exc


def echo_warning(message: str) -> None:
    """``warning: message`` on stderr."""
    color = use_color(sys.stderr)
    label = click.style("warning:", fg="yellow", bold=True) if color else "warning:"
    click.echo(f"{label} {terminal_safe(message, keep_newlines=True)}", err=True)


class _WarningHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        echo_warning(record.getMessage())


def show_state_notices() -> None:
    """Print the state backends' notices (WARNING records of ``provisioner.state``) as
    ``warning: ...`` lines, for every command (installed once)."""
    logger = logging.getLogger(STATE_LOGGER)
    if not any(isinstance(handler, _WarningHandler) for handler in logger.handlers):
        logger.addHandler(_WarningHandler(logging.WARNING))


# --- the API trace (PROVISIONER_LOG=debug, --log-file) ----------------------------------------

LOG_VARIABLE = "PROVISIONER_LOG"
"""``debug``: the API trace (:data:`provisioner.http.API_LOGGER`) on stderr, or in
``--log-file`` when given."""


class _RedactingFormatter(logging.Formatter):
    """Every masked value redacted, also in a log file (which no guarded stream covers)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return _REDACTOR[0](text) if _MASKED else text


def start_api_trace(log_file: Path | None) -> Callable[[], None]:
    """Show the API trace, one line per HTTP exchange, when ``PROVISIONER_LOG=debug`` (on
    stderr) or ``log_file`` is given (appended there); returns what stops it."""
    level = os.environ.get(LOG_VARIABLE, "").strip().lower()
    if level not in ("", "debug", "off"):
        raise ConfigError(
            f"{LOG_VARIABLE}={level!r} is not a log level",
            hint=f"set {LOG_VARIABLE}=debug for the API trace, or unset it",
        )
    if log_file is None and level != "debug":
        return lambda: None
    try:
        handler: logging.Handler = (
            logging.FileHandler(log_file, encoding="utf-8")
            if log_file is not None
            else logging.StreamHandler(sys.stderr)
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot open the --log-file {log_file}: {exc.strerror}",
            hint="check that the folder exists and is writable",
        ) from exc
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(name)s: %(message)s"))
    logger = logging.getLogger(API_LOGGER)
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def stop() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved)
        handler.close()

    return stop
