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

The only I/O here is reading the file; nothing touches the environment.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioner.diagnostics import Diagnostic, Severity

try:  # libyaml's C parser when available (much faster); the pure-Python one otherwise
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_base_resolve: Callable[..., str] = _BaseLoader.resolve
_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}
_RESOLVED_LIMIT = 4096


class _Loader(_BaseLoader):
    """The safe loader with a memo of plain-scalar tag resolution (keys repeat in every file;
    the resolver's regular expressions are the composer's main Python cost)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _base_resolve(self, kind, value, implicit)
        key = (value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = _base_resolve(self, kind, value, implicit)
            if len(_RESOLVED) < _RESOLVED_LIMIT:
                _RESOLVED[key] = tag
        return tag


MAX_FILE_BYTES = 1024 * 1024
"""Files larger than this are rejected before parsing (1 MiB)."""

NODE_BUDGET = 10_000
"""At most this many nodes per file once aliases are expanded (a bot needs about 50)."""

MAX_DEPTH = 64
"""At most this many nested collections (also stops recursive aliases)."""

JsonPath = tuple[str | int, ...]
Position = tuple[int, int]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SCALAR_TAGS = frozenset(
    {
        _STR,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
    }
)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_CONSTRUCTOR = SafeConstructor()


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


class _LoadProblem(Exception):
    """A problem that stops loading a file (internal; becomes a Diagnostic)."""

    def __init__(
        self, code: str, message: str, position: Position, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.hint = hint


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


def load_document(path: Path, display: str) -> Document:
    """Read and parse ``path``; ``display`` is how messages name the file.

    Never raises for bad content: every problem is a diagnostic on the returned Document.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a link to /dev/zero or a FIFO: never read it
            raise _LoadProblem(
                "file-unreadable",
                "not a regular file",
                (1, 1),
                "a manifest is a plain YAML file; replace the link or device with one",
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
        size = max(info.st_size, len(data))
        if size > MAX_FILE_BYTES:
            raise _LoadProblem(
                "yaml-too-large",
                f"file is {size} bytes; manifests are limited to {MAX_FILE_BYTES} bytes (1 MiB)",
                (1, 1),
                "a bot manifest is a few dozen lines; check that this is the right file",
            )
    except _LoadProblem as problem:
        return _failed(display, problem)
    except OSError as exc:
        return _failed(
            display,
            _LoadProblem(
                "file-unreadable",
                f"cannot read file: {exc.strerror or type(exc).__name__}",
                (1, 1),
                "check that the file exists and is readable",
            ),
        )
    return parse_document(data, display)


def parse_document(data: bytes, display: str) -> Document:
    """Parse manifest bytes (see :func:`load_document`); never raises for bad content."""
    document = Document(file=display, value=None)
    try:
        text = _decode(data)
        root = _compose(text)
        if root is None:
            raise _LoadProblem(
                "yaml-empty",
                "file is empty",
                (1, 1),
                "write the manifest's keys here, or delete the file",
            )
        if not isinstance(root, MappingNode):
            raise _LoadProblem(
                "yaml-not-mapping",
                f"the document is a {_kind(root)}; a manifest must be a mapping of keys",
                _mark(root),
                "write `key: value` lines at the top level",
            )
        document.value = _Builder(document).build(root)
    except _LoadProblem as problem:
        document.value = None
        document.diagnostics.append(_diagnostic(display, problem))
    return document


def _failed(display: str, problem: _LoadProblem) -> Document:
    return Document(file=display, value=None, diagnostics=[_diagnostic(display, problem)])


def _diagnostic(display: str, problem: _LoadProblem) -> Diagnostic:
    return diagnostic_at(display, problem.position, (), problem.code, problem.message, problem.hint)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise _LoadProblem(
            "yaml-encoding",
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            (line, column),
            "save the file as UTF-8",
        ) from exc
    return text.removeprefix("\ufeff")


_DEPTH_PRECHECK_OPENERS = 1000
"""Texts with more nesting openers than this (flow brackets, compact ``- ``/``? `` entries)
get a depth check before composition: only those can nest deep enough, within 1 MiB, to
overflow the C stack of older libyaml composers (~100k levels), which recurse."""

_LIBYAML_DEPTH_PROBLEM = "exceeded maximum nesting depth"
"""How libyaml (PyYAML 6.0.4 and later) refuses nesting past its own limit of 1000 levels.
Its scanner looks up to 1024 characters ahead, so it can refuse a text before the event at
this project's limit has been read; the pure-Python parser then finds that event."""


def _nesting_openers(text: str) -> int:
    return text.count("[") + text.count("{") + text.count("- ") + text.count("? ")


def _check_depth(text: str) -> None:
    """Stop pathological nesting before composing, from the (iterative) event stream."""
    if _nesting_openers(text) > _DEPTH_PRECHECK_OPENERS:
        _raise_if_too_deep(text, _Loader)


def _raise_if_too_deep(text: str, loader_class: type[Any]) -> None:
    """Raise ``yaml-too-deep`` at the first collection nested past :data:`MAX_DEPTH`.

    Returns quietly when the text is not that deep, or is invalid YAML before that point
    (composition then reports the syntax error with its position). With libyaml's own depth
    refusal, the pure-Python parser (no such limit, no recursion) takes over.
    """
    loader = loader_class(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1:  # the root mapping is level 0 for the builder
                    raise _LoadProblem(
                        "yaml-too-deep",
                        f"values are nested more than {MAX_DEPTH} levels deep",
                        _position(event.start_mark),
                        "manifests need only a few levels of nesting",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if _is_libyaml_depth_refusal(exc) and loader_class is not yaml.SafeLoader:
            _raise_if_too_deep(text, yaml.SafeLoader)
        return
    finally:
        loader.dispose()


def _is_libyaml_depth_refusal(exc: yaml.YAMLError) -> bool:
    return isinstance(exc, yaml.MarkedYAMLError) and _LIBYAML_DEPTH_PROBLEM in str(exc.problem)


def _compose(text: str) -> Node | None:
    _check_depth(text)
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "a single document" in f"{exc.problem} {exc.context}":
            raise _LoadProblem(
                "yaml-multiple-documents",
                "file holds more than one YAML document",
                _position(exc.problem_mark),
                "keep one bot per file: remove the `---` separator and split the file",
            ) from exc
        raise _syntax_problem(exc, text) from exc
    except yaml.MarkedYAMLError as exc:
        if _is_libyaml_depth_refusal(exc):
            _raise_if_too_deep(text, yaml.SafeLoader)
        raise _syntax_problem(exc, text) from exc
    except yaml.YAMLError as exc:  # reader errors (e.g. control characters) without marks
        raise _LoadProblem("yaml-syntax", f"invalid YAML: {exc}", (1, 1)) from exc
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> _LoadProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = _position(mark)
    problem = exc.problem or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if exc.context:
        context = exc.context
        if exc.context_mark is not None and _position(exc.context_mark) != (line, column):
            start_line, start_column = _position(exc.context_mark)
            context += f" that starts at line {start_line}, column {start_column}"
        message += f" ({context})"
    hint = "fix the YAML syntax at this position"
    lines = text.split("\n")
    at = lines[line - 1][column - 1 : column] if line <= len(lines) else ""
    if at == "\t" or "\\t" in problem:
        message = "invalid YAML: a tab character cannot start a token here"
        hint = "YAML does not allow tabs for indentation; indent with spaces"
    elif "found undefined alias" in problem:
        hint = "define the anchor (&name) before using the alias (*name)"
    return _LoadProblem("yaml-syntax", message, _position(mark), hint)


def _position(mark: Any) -> Position:
    if mark is None:
        return (1, 1)
    return (int(mark.line) + 1, int(mark.column) + 1)


def _mark(node: Node) -> Position:
    return _position(node.start_mark)


def _kind(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "list"
    if isinstance(node, ScalarNode):
        return "plain value" if node.tag != _STR else "string"
    return "mapping"


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


class _Builder:
    """Turns a composed node tree into values, recording positions and load problems."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.nodes = 0
        self.dollars: list[JsonPath] = []

    def build(self, root: MappingNode) -> Any:
        value = self._node(root, (), 0)
        self.document.dollar_strings = self.dollars
        return value

    def _problem(self, code: str, message: str, node: Node, hint: str | None = None) -> None:
        self.document.diagnostics.append(
            diagnostic_at(self.document.file, _mark(node), (), code, message, hint)
        )

    def _count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > NODE_BUDGET:
            raise _LoadProblem(
                "yaml-alias-budget",
                f"the document expands to more than {NODE_BUDGET} nodes",
                _mark(node),
                "anchors and aliases (&name / *name) multiply nodes; repeat fewer of them",
            )
        if depth > MAX_DEPTH:
            raise _LoadProblem(
                "yaml-too-deep",
                f"values are nested more than {MAX_DEPTH} levels deep",
                _mark(node),
                "an alias may refer to its own anchor; manifests need only a few levels",
            )

    def _node(self, node: Node, path: JsonPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > NODE_BUDGET or depth > MAX_DEPTH:
            self._count(node, depth)
        positions = self.document.positions
        if path not in positions:
            mark = node.start_mark
            positions[path] = (mark.line + 1, mark.column + 1)
        kind = type(node)
        if kind is ScalarNode:
            return self._scalar(node, path)
        if kind is MappingNode:
            return self._mapping(node, path, depth)  # type: ignore[arg-type]
        if node.tag != _SEQ_TAG:
            raise self._unsupported_tag(node)
        return [
            self._node(item, (*path, index), depth + 1) for index, item in enumerate(node.value)
        ]

    def _scalar(self, node: Node, path: JsonPath) -> Any:
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):
            text = str(node.value)
            if "${" in text:
                self.dollars.append(path)
            return text
        if tag not in _SCALAR_TAGS:
            raise self._unsupported_tag(node)
        constructor: Callable[[SafeConstructor, Node], Any] = _CONSTRUCTOR.yaml_constructors[tag]
        self.document.scalar_text[path] = str(node.value)
        return constructor(_CONSTRUCTOR, node)

    def _unsupported_tag(self, node: Node) -> _LoadProblem:
        return _LoadProblem(
            "yaml-unsupported-tag",
            f"unsupported YAML tag {_short_tag(node.tag)}",
            _mark(node),
            "manifests hold plain mappings, lists, strings, numbers and booleans; remove the tag",
        )

    def _mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self._unsupported_tag(node)
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(
                    "yaml-complex-key",
                    f"a mapping key must be plain text, not a {_kind(key_node)}",
                    key_node,
                    "write keys as plain names such as `name:`",
                )
                continue
            key = str(key_node.value)
            entry = (*path, key)
            if key in result:
                first_line, first_column = self.document.key_positions[entry]
                self._problem(
                    "yaml-duplicate-key",
                    f"duplicate key '{key}' (first defined at line {first_line}, "
                    f"column {first_column})",
                    key_node,
                    "remove one of them; YAML would silently keep only the last",
                )
                continue
            self.document.key_positions[entry] = _mark(key_node)
            result[key] = self._node(value_node, entry, depth + 1)
        for value_node in merges:
            self._merge(value_node, path, depth, result)
        return result

    def _merge(self, value_node: Node, path: JsonPath, depth: int, result: dict[str, Any]) -> None:
        """``<<: *defaults`` (or a list of them): copy the keys the mapping does not set."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise _LoadProblem(
                    "yaml-syntax",
                    "invalid YAML: a merge key (<<) needs a mapping or a list of mappings",
                    _mark(source),
                    "write `<<: *anchor` where &anchor names a mapping",
                )
            self._count(source, depth + 1)
            for key_node, sub_value in source.value:
                if key_node.tag == _MERGE:
                    self._merge(sub_value, path, depth + 1, result)
                    continue
                key = str(key_node.value)
                if not isinstance(key_node, ScalarNode) or key in result:
                    continue
                entry = (*path, key)
                self.document.key_positions[entry] = _mark(key_node)
                result[key] = self._node(sub_value, entry, depth + 1)
