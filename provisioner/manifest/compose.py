"""YAML text -> one composed node tree (PyYAML, libyaml's parser when built with it), with
nesting bounded and every syntax error as a :class:`LoadProblem` at the parser's position."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from provisioner.manifest.document import LoadProblem, mark_position

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


MAX_DEPTH = 64
"""At most this many nested collections (also stops recursive aliases)."""

_DEPTH_PRECHECK_OPENERS = 1000
"""Texts with more nesting openers than this (flow brackets, compact ``- ``/``? `` entries)
get a depth check before composition: only those can nest deep enough, within 1 MiB, to
overflow the C stack of older libyaml composers (~100k levels), which recurse."""

_LIBYAML_DEPTH_PROBLEM = "exceeded maximum nesting depth"
"""How libyaml (PyYAML 6.0.4 and later) refuses nesting past its own limit of 1000 levels.
Its scanner looks up to 1024 characters ahead, so it can refuse a text before the event at
this project's limit has been read; the pure-Python parser then finds that event."""


def compose(text: str) -> Node | None:
    """The node tree of ``text`` (None for an empty document); LoadProblem when it is not
    one valid YAML document or nests deeper than :data:`MAX_DEPTH`."""
    _check_depth(text)
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "a single document" in f"{exc.problem} {exc.context}":
            raise LoadProblem(
                "yaml-multiple-documents",
                "file holds more than one YAML document",
                mark_position(exc.problem_mark),
                "keep one bot per file: remove the `---` separator and split the file",
            ) from exc
        raise _syntax_problem(exc, text) from exc
    except yaml.MarkedYAMLError as exc:
        if _is_libyaml_depth_refusal(exc):
            _raise_if_too_deep(text, yaml.SafeLoader)
        raise _syntax_problem(exc, text) from exc
    except yaml.YAMLError as exc:  # reader errors (e.g. control characters) without marks
        raise LoadProblem("yaml-syntax", f"invalid YAML: {exc}", (1, 1)) from exc
    finally:
        loader.dispose()


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
                    raise LoadProblem(
                        "yaml-too-deep",
                        f"values are nested more than {MAX_DEPTH} levels deep",
                        mark_position(event.start_mark),
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


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> LoadProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = mark_position(mark)
    problem = exc.problem or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if exc.context:
        context = exc.context
        if exc.context_mark is not None and mark_position(exc.context_mark) != (line, column):
            start_line, start_column = mark_position(exc.context_mark)
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
    return LoadProblem("yaml-syntax", message, mark_position(mark), hint)
