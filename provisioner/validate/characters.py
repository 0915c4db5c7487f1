"""The one-line rule's messages: a ``userId``, ``name`` or metadata key holding a control or
line-break character (:data:`~provisioner.models.CONTROL_CHARACTERS`) is reported at its
file:line:col with the character named (``U+2028 (LINE SEPARATOR)``) and where it is.

The JSON Schemas and the models hold the rule (a ``pattern``); this module only turns the
schema's pattern error into a message a person can act on: such characters are invisible.
"""

from __future__ import annotations

import re

from jsonschema.exceptions import ValidationError

from provisioner.diagnostics import Diagnostic, JsonPath, diagnostic_at
from provisioner.manifest import Document
from provisioner.models import CONTROL_CHARACTERS, ONE_LINE_PATTERN, USER_ID_PATTERN
from provisioner.render.safe import terminal_safe

CODE = "control-character"
_FORBIDDEN = re.compile(f"[{CONTROL_CHARACTERS}]")
_PATTERNS = (USER_ID_PATTERN, ONE_LINE_PATTERN)
_NAMES = {
    "\t": "TAB",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x0b": "VERTICAL TAB",
    "\x0c": "FORM FEED",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
    "\x85": "NEXT LINE",
    "\u2028": "LINE SEPARATOR",
    "\u2029": "PARAGRAPH SEPARATOR",
}
_HINT = "delete it: such characters are invisible and usually come in with pasted text"


def character_name(char: str) -> str:
    """``U+2028 (LINE SEPARATOR)``; ``U+0007 (a control character)`` when it has no name."""
    return f"U+{ord(char):04X} ({_NAMES.get(char, 'a control character')})"


def character_problem(document: Document, error: ValidationError) -> Diagnostic | None:
    """The diagnostic of a one-line pattern error whose text holds a forbidden character
    (the value's, or a metadata key's at the key); ``None`` for any other error."""
    if error.validator != "pattern" or error.validator_value not in _PATTERNS:
        return None
    text = error.instance if isinstance(error.instance, str) else ""
    found = _FORBIDDEN.search(text)
    if found is None:  # a userId with a space: the pattern's own message
        return None
    path: JsonPath = tuple(error.absolute_path)
    where = f"{character_name(found.group())} at character {found.start() + 1}"
    if "propertyNames" in error.schema_path:
        return diagnostic_at(
            document.file,
            document.key_location((*path, text)),
            path,
            CODE,
            f"key '{terminal_safe(text)}' holds {where}; a key must be one line of printable text",
            _HINT,
        )
    return diagnostic_at(
        document.file,
        document.location(path),
        path,
        CODE,
        f"holds {where}; it must be one line of printable text",
        _HINT,
    )
