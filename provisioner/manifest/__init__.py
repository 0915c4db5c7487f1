"""YAML manifests -> JSON-shaped values that remember where every node came from.

``load_document(path, display)`` reads one file and returns a :class:`Document`: the value
(dicts, lists, str, int, float, bool, None), the 1-based ``(line, column)`` of every value
and of every mapping key (keyed by JSON-path tuples such as ``("integrations", 1,
"callbackUrl")``), and the problems found while loading, as :class:`Diagnostic` values.

YAML traps become diagnostics instead of surprises: non-UTF-8 bytes, files over 1 MiB, an
empty file, several documents, a root that is not a mapping, duplicate keys, keys that are not
plain scalars, unsupported tags, aliases that expand past :data:`NODE_BUDGET` nodes ("billion
laughs"), nesting deeper than :data:`MAX_DEPTH`, and every syntax error (tabs included) with the
parser's position. Mapping keys are always read as text (``no:`` is the key ``"no"``); values
follow YAML 1.1 as PyYAML's safe loader does, except that timestamps stay text.

The modules, in the order a file goes through them: :mod:`.load` (bytes -> text),
:mod:`.compose` (text -> YAML nodes), :mod:`.build` (nodes -> values with positions), all
into a :class:`~.document.Document`.

The only I/O here is reading the file; nothing touches the environment.
"""

from __future__ import annotations

from provisioner.manifest.build import NODE_BUDGET
from provisioner.manifest.compose import MAX_DEPTH
from provisioner.manifest.document import Document
from provisioner.manifest.load import MAX_FILE_BYTES, load_document, parse_document

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "NODE_BUDGET",
    "Document",
    "load_document",
    "parse_document",
]
