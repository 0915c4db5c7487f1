"""Diagnostic: one problem found in a manifest, pointed at file:line:column, and its field path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]
"""A path into a manifest value: ``("integrations", 1, "callbackUrl")``."""
Position = tuple[int, int]
"""1-based ``(line, column)``."""
SECRET_FIELDS = frozenset({"apiKey", "appSecret"})
_SECRET_PARTS = SECRET_FIELDS | {"auth", "dsn", "readDsn"}


def is_secret_path(path: JsonPath) -> bool:
    """Values at or under ``auth``, ``apiKey``, ``appSecret``, ``dsn`` or ``readDsn`` are never
    printed in a diagnostic."""
    return any(part in _SECRET_PARTS for part in path)


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem in a manifest. Sorted by file, line, column; ``path`` is the field path
    (``integrations[1].callbackUrl``; empty for the whole document)."""

    file: str
    line: int
    column: int
    path: str
    code: str
    severity: Severity
    message: str
    hint: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """Stable JSON view (the ``--format json`` contract)."""
        return asdict(self)


def has_errors(diagnostics: Iterable[Diagnostic], *, strict: bool = False) -> bool:
    """True when any diagnostic fails the run (warnings count only with ``strict``)."""
    return any(d.severity == "error" or strict for d in diagnostics)


def diagnostic_order(diagnostic: Diagnostic) -> tuple[str, int, int, str, str, str]:
    """Sort key: file, line, column, then path, code and message (never compares hints)."""
    d = diagnostic
    return (d.file, d.line, d.column, d.path, d.code, d.message)


def format_path(path: JsonPath) -> str:
    """``("integrations", 1, "callbackUrl")`` -> ``integrations[1].callbackUrl``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def diagnostic_at(
    file: str,
    position: tuple[int, int],
    path: JsonPath,
    code: str,
    message: str,
    hint: str | None = None,
    severity: Severity = "error",
) -> Diagnostic:
    """A Diagnostic for ``file`` at ``position`` (1-based line, column) and field ``path``."""
    return Diagnostic(
        file=file,
        line=position[0],
        column=position[1],
        path=format_path(path),
        code=code,
        severity=severity,
        message=message,
        hint=hint,
    )


def display_path(path: Path) -> str:
    """How messages name ``path``: relative to the working directory when under it."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd().absolute()).as_posix()
    except ValueError:
        return path.as_posix()
