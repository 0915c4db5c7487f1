"""A loaded manifest (:class:`Document`: values with the position of every node) and the
problem that stops loading one (:class:`LoadProblem`, internal: it becomes a Diagnostic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.diagnostics import Diagnostic, JsonPath, Position, diagnostic_at


@dataclass
class Document:
    """One loaded manifest file.

    ``value`` is None when the file could not be loaded at all (then ``diagnostics`` says why).
    ``positions`` maps a JSON path to the position of its value; ``key_positions`` maps the path
    of a mapping entry to the position of its key. ``scalar_text`` keeps the source text of
    every non-string scalar (``no``, ``1.10``) so a message can suggest quoting it.
    """

    file: str
    value: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)
    scalar_text: dict[JsonPath, str] = field(default_factory=dict)
    dollar_strings: list[JsonPath] | None = None
    """Paths of the string values holding ``${`` (recorded while loading; None when the
    Document was built from a value, then checks walk the value instead)."""

    @property
    def loaded(self) -> bool:
        """True when the file parsed into a mapping (it may still carry diagnostics)."""
        return isinstance(self.value, dict)

    def location(self, path: JsonPath) -> Position:
        """Position of the value at ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def key_location(self, path: JsonPath) -> Position:
        """Position of the key of the mapping entry ``path`` (falls back to :meth:`location`)."""
        return self.key_positions.get(path) or self.location(path)


class LoadProblem(Exception):
    """A problem that stops loading a file (internal to this package; becomes a Diagnostic)."""

    def __init__(
        self, code: str, message: str, position: Position, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.hint = hint

    def diagnostic(self, display: str) -> Diagnostic:
        """The problem as a Diagnostic of the file ``display`` (the whole document's)."""
        return diagnostic_at(display, self.position, (), self.code, self.message, self.hint)


def mark_position(mark: Any) -> Position:
    """The 1-based ``(line, column)`` of a YAML mark (``(1, 1)`` without one)."""
    if mark is None:
        return (1, 1)
    return (int(mark.line) + 1, int(mark.column) + 1)
