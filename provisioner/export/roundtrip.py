"""YAML round trips with ruamel.yaml, for ``export``: new manifests, and existing ones updated
in place keeping comments, key order, quoting and layout.

- :func:`dump` writes a new manifest (indentation as in the demo manifests);
- :func:`load` reads an existing one; :func:`merge` changes it into the exported one field
  by field, leaving alone what is equal (``${NAME}`` references, API defaults written out,
  ``protect``); :func:`merged_text` does both and writes it back with the layout it had
  (the indentation that reproduces the original text, tried from a few common ones).

Strings that PyYAML (YAML 1.1, how manifests are read) would take for something else
(``no``, ``1``, ``1.0``) are double-quoted, so the manifest reads back as it was exported.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from yaml import ScalarNode
from yaml.resolver import Resolver

from provisioner.secrets import is_sensitive

Layout = tuple[int, int, int]
DEFAULT_LAYOUT: Layout = (2, 4, 2)
"""mapping indent, sequence indent, dash offset: ``integrations:\\n  - type: webhook``."""
_LAYOUTS: tuple[Layout, ...] = (DEFAULT_LAYOUT, (2, 2, 0), (4, 4, 2), (4, 6, 4), (2, 4, 0))
_STR_TAG = "tag:yaml.org,2002:str"
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "stream": True,
    "handleResponse": True,
    "metadata": {},
    "objectNames": [],
    "events": [],
    "protect": False,
}
"""Values a manifest may leave out (the API's and the provisioner's defaults)."""
KEPT_KEYS = frozenset({"protect"})
"""Manifest keys that are not API fields: never removed by a merge."""


def _yaml(layout: Layout = DEFAULT_LAYOUT) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.allow_unicode = True
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def load(text: str) -> Any:
    """An existing manifest as ruamel's round-trip values (ruamel's YAMLError when broken)."""
    return _yaml().load(text)


def dump(data: Any, *, header: str = "", layout: Layout = DEFAULT_LAYOUT) -> str:
    """YAML text of ``data`` (plain values or round-trip ones), after ``header`` lines."""
    stream = io.StringIO()
    _yaml(layout).dump(_quoted(data), stream)
    return header + stream.getvalue()


def layout_of(data: Any, original: str) -> Layout:
    """The layout whose dump of the unchanged ``data`` is ``original`` (else the default)."""
    for layout in _LAYOUTS:
        if dump(data, layout=layout) == original:
            return layout
    return DEFAULT_LAYOUT


def merged_text(original: str, data: CommentedMap, source: Mapping[str, Any]) -> str | None:
    """The text of the manifest ``original`` (loaded as ``data``, which is changed in place)
    once :func:`merge` made it say what ``source`` says, in the layout it had; None when
    nothing differs (the text stays as it is, byte for byte)."""
    if not merge(data, source):
        return None
    # the layout is found by dumping the manifest as it was, so only for a text that changes
    # (most of a re-export does not): merge has changed data, read it again
    return dump(data, layout=layout_of(load(original), original))


def _quoted(value: Any) -> Any:
    """``value`` with every string PyYAML would not read back as that string double-quoted."""
    if isinstance(value, CommentedMap):
        for key in value:
            value[key] = _quoted(value[key])
        return value
    if isinstance(value, CommentedSeq):
        for index, item in enumerate(value):
            value[index] = _quoted(item)
        return value
    if isinstance(value, dict):
        return {key: _quoted(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_quoted(item) for item in value]
        if not all(isinstance(item, str) for item in items):
            return items
        flow = CommentedSeq(items)  # a list of names reads best inline: [RC:TxtMsg]
        flow.fa.set_flow_style()
        return flow
    if isinstance(value, str) and type(value) is str and _reads_back_as_other(value):
        return DoubleQuotedScalarString(value)
    return value


def _reads_back_as_other(text: str) -> bool:
    tag: str = Resolver().resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag != _STR_TAG


# --- merge -----------------------------------------------------------------------------------


def merge(target: CommentedMap, source: Mapping[str, Any]) -> bool:
    """Make the loaded manifest ``target`` say what the exported ``source`` says, in place;
    True when anything changed. Equal values, references and written-out defaults stay as
    they are; integrations are matched by ``type``."""
    changed = False
    for key, value in source.items():
        if key == "integrations" and isinstance(target.get(key), CommentedSeq):
            changed |= _merge_integrations(target[key], value)
        elif key not in target:
            target.insert(_position(target, source, key), key, value)
            changed = True
        elif isinstance(value, dict) and isinstance(target[key], CommentedMap):
            changed |= _merge_plain_mapping(target[key], value)
        elif not _same(target[key], value):
            _replace(target, key, value)
            changed = True
    for key in [key for key in target if key not in source]:
        if key not in KEPT_KEYS and not _same(target[key], DEFAULTS.get(key, _ABSENT)):
            del target[key]
            changed = True
    return changed


_ABSENT = object()


def _same(current: Any, wanted: Any) -> bool:
    """Whether a manifest value already says ``wanted`` (a reference always does: its
    value is not known here)."""
    if isinstance(current, str) and is_sensitive(current):
        return True
    if isinstance(current, dict) and isinstance(wanted, dict):
        return set(current) == set(wanted) and all(_same(current[k], wanted[k]) for k in wanted)
    if isinstance(current, list) and isinstance(wanted, list):
        return len(current) == len(wanted) and all(map(_same, current, wanted))
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted
    return bool(current == wanted)


def _replace(target: CommentedMap | CommentedSeq, key: Any, value: Any) -> None:
    """Replace one value, keeping a list's flow or block style."""
    current = target[key]
    if isinstance(current, CommentedSeq) and isinstance(value, list):
        current[:] = value
    else:
        target[key] = value


def _merge_plain_mapping(target: CommentedMap, source: Mapping[str, Any]) -> bool:
    """``metadata`` and ``auth``: every key of ``source``, no other key."""
    changed = False
    for key, value in source.items():
        if key not in target:
            target[key] = value
            changed = True
        elif not _same(target[key], value):
            _replace(target, key, value)
            changed = True
    for key in [key for key in target if key not in source]:
        del target[key]
        changed = True
    return changed


def _merge_integrations(target: CommentedSeq, source: list[dict[str, Any]]) -> bool:
    changed = False
    wanted = {item["type"]: item for item in source}
    for index in reversed(range(len(target))):
        item = target[index]
        if not isinstance(item, CommentedMap) or item.get("type") not in wanted:
            del target[index]
            changed = True
    present = {item.get("type"): item for item in target}
    for kind, item in wanted.items():
        if kind in present:
            changed |= merge(present[kind], item)
        else:
            target.append(item)
            changed = True
    return changed


def _position(target: CommentedMap, source: Mapping[str, Any], key: str) -> int:
    """Where a new key goes: after the last key before it in ``source`` that ``target`` has."""
    keys = list(target)
    position = 0
    for earlier in _before(source, key):
        if earlier in target:
            position = keys.index(earlier) + 1
    return position if position else len(keys)


def _before(source: Mapping[str, Any], key: str) -> Iterator[str]:
    for each in source:
        if each == key:
            return
        yield each
