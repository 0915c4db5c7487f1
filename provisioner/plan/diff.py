"""The field-level diff of two canonical specs: one walk, one FieldDiff per changed field. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from provisioner.plan.changes import FieldDiff
from provisioner.secrets import is_sensitive_value

_Path = tuple[str, ...]


def diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """Field-level differences between two canonical specs, sorted by path.

    A walk of both specs, integrations keyed by type, gives one FieldDiff per changed leaf
    with a readable path (``name``, ``metadata.version``, ``integrations[dify_chat].stream``).
    Plain mappings are descended into; lists (``objectNames``, ``events``) and sensitive
    markers count as one field each, as does a whole integration added or removed.
    """
    if old == new:
        return ()
    found = dict(_walk((), _keyed(old), _keyed(new), True, True))
    return tuple(found[path] for path in sorted(found))


def change_path(path: Sequence[str | int]) -> str:
    """``("integrations", "dify_chat", "stream")`` -> ``integrations[dify_chat].stream``:
    a changed field's path as plans show it (integrations named by type, odd keys quoted)."""
    text = ""
    for index, key in enumerate(path):
        if isinstance(key, int) or (index == 1 and path[0] == "integrations"):
            text += f"[{key}]"
        elif _PLAIN_KEY.fullmatch(str(key)):
            text += f".{key}" if text else str(key)
        else:
            text += f"[{json.dumps(str(key), ensure_ascii=False)}]"
    return text


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _keyed(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``integrations`` as a mapping keyed by type, so paths name the integration."""
    out = dict(spec)
    integrations = out.get("integrations")
    if isinstance(integrations, list):
        out["integrations"] = {
            str(item.get("type")): {key: value for key, value in item.items() if key != "type"}
            for item in integrations
            if isinstance(item, dict)
        }
    return out


def _walk(
    path: _Path, old: Any, new: Any, has_old: bool, has_new: bool
) -> Iterator[tuple[_Path, FieldDiff]]:
    """One FieldDiff per changed leaf under ``path`` (an absent value is None)."""
    if has_old and has_new and _is_plain(old) and _is_plain(new):
        for key in sorted(set(old) | set(new)):
            in_old, in_new = key in old, key in new
            if in_old != in_new or old.get(key) != new.get(key):
                yield from _walk((*path, key), old.get(key), new.get(key), in_old, in_new)
        return
    sensitive = is_sensitive_value(old) or is_sensitive_value(new)
    yield path, FieldDiff(change_path(path), old, new, sensitive)


def _is_plain(value: Any) -> bool:
    """A mapping to descend into: not a sensitive marker (one field)."""
    return isinstance(value, dict) and not is_sensitive_value(value)
