"""A composed YAML node tree -> JSON-shaped values, recording the position of every value and
key on the :class:`Document`, with the YAML traps of the tree as diagnostics or LoadProblems:
duplicate and complex keys, unsupported tags, aliases past :data:`NODE_BUDGET` nodes, nesting
past :data:`~provisioner.manifest.compose.MAX_DEPTH`. Keys are always text; timestamps stay text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioner.diagnostics import (
    JsonPath,
    Position,
    diagnostic_at,
    format_path,
    is_secret_path,
)
from provisioner.manifest.compose import MAX_DEPTH
from provisioner.manifest.document import Document, LoadProblem, mark_position

NODE_BUDGET = 10_000
"""At most this many nodes per file once aliases are expanded (a bot needs about 50)."""

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


def node_position(node: Node) -> Position:
    return mark_position(node.start_mark)


def node_kind(node: Node) -> str:
    """How a message names what ``node`` is: a list, a plain value, a string or a mapping."""
    if isinstance(node, SequenceNode):
        return "list"
    if isinstance(node, ScalarNode):
        return "plain value" if node.tag != _STR else "string"
    return "mapping"


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


class Builder:
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
            diagnostic_at(self.document.file, node_position(node), (), code, message, hint)
        )

    def _count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > NODE_BUDGET:
            raise LoadProblem(
                "yaml-alias-budget",
                f"the document expands to more than {NODE_BUDGET} nodes",
                node_position(node),
                "anchors and aliases (&name / *name) multiply nodes; repeat fewer of them",
            )
        if depth > MAX_DEPTH:
            raise LoadProblem(
                "yaml-too-deep",
                f"values are nested more than {MAX_DEPTH} levels deep",
                node_position(node),
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
        try:
            return constructor(_CONSTRUCTOR, node)
        except (ValueError, IndexError, KeyError):  # `!!int abc`, `!!int` alone, `!!bool maybe`
            field = f"{format_path(path)}: " if path else ""
            value = "the value" if is_secret_path(path) else repr(str(node.value))
            raise LoadProblem(
                "yaml-tag-mismatch",
                f"{field}{value} is not a valid {_short_tag(tag)} value",
                node_position(node),
                f"remove the tag {_short_tag(tag)}, or write a value it takes",
            ) from None

    def _unsupported_tag(self, node: Node) -> LoadProblem:
        return LoadProblem(
            "yaml-unsupported-tag",
            f"unsupported YAML tag {_short_tag(node.tag)}",
            node_position(node),
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
                    f"a mapping key must be plain text, not a {node_kind(key_node)}",
                    key_node,
                    "write keys as plain names such as `name:`",
                )
                continue
            key = str(key_node.value)
            entry = (*path, key)
            if key in result:
                self._duplicate_key(key, entry, key_node)
                continue
            self.document.key_positions[entry] = node_position(key_node)
            result[key] = self._node(value_node, entry, depth + 1)
        for value_node in merges:
            self._merge(value_node, path, depth, result)
        return result

    def _duplicate_key(self, key: str, entry: JsonPath, key_node: Node) -> None:
        first_line, first_column = self.document.key_positions[entry]
        self._problem(
            "yaml-duplicate-key",
            f"duplicate key '{key}' (first defined at line {first_line}, column {first_column})",
            key_node,
            "remove one of them; YAML would silently keep only the last",
        )

    def _merge(self, value_node: Node, path: JsonPath, depth: int, result: dict[str, Any]) -> None:
        """``<<: *defaults`` (or a list of them): copy the keys the mapping does not set."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise LoadProblem(
                    "yaml-syntax",
                    "invalid YAML: a merge key (<<) needs a mapping or a list of mappings",
                    node_position(source),
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
                self.document.key_positions[entry] = node_position(key_node)
                result[key] = self._node(sub_value, entry, depth + 1)
