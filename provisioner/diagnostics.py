"""Diagnostic: one problem found in a manifest, pointed at file:line:column."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


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


def has_errors(diagnostics: list[Diagnostic], *, strict: bool = False) -> bool:
    """True when any diagnostic fails the run (warnings count only with ``strict``)."""
    return any(d.severity == "error" or strict for d in diagnostics)
