"""JSON Schemas of the documents provisioner writes for tools: the plan (``plan --format
json``, ``plan --out``, ``github plan --out``), the drift report (``drift --format json``) and
the check report (``check --format json``), for policy engines (OPA/conftest) and CI.

The plan's and the drift report's are generated from the typed documents
(:mod:`provisioner.plan.document`, the ``TypedDict`` every renderer writes) by
:func:`typed_schema`: each ``TypedDict`` an object with exactly its keys (``NotRequired``
ones optional) under ``$defs``, ``Literal`` an ``enum``, ``X | None`` an ``anyOf``, ``Any``
anything;
the check report's is written by hand (``provisioner/schemas/check.schema.json``). Each is
shipped in the package beside the manifests' schemas, and ``tests/test_output_schemas.py``
keeps the shipped files equal to what :func:`generated_schema` makes and validates real
outputs against all three.
"""

from __future__ import annotations

import inspect
import json
import types
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from provisioner.forge.shards import FailureDoc
from provisioner.plan.document import PlanDoc, PlansDoc

GENERATED = ("plan", "drift")
SCHEMA_BASE = "https://rongcloud-bot-provisioner.github.io/schemas/"


class DriftReportDoc(TypedDict):
    """``provisioner drift --format json``: the plans made with a refresh, in app order, and
    the apps that could not be checked."""

    format_version: int
    plans: list[PlanDoc]
    failures: list[FailureDoc]


_HEADS: dict[str, tuple[Any, str, str]] = {
    "plan": (
        PlansDoc,
        "provisioner plan",
        "The plans of `provisioner plan --format json`, `plan --out FILE` and `github plan"
        " --out FILE`: one document per app, in app-name order (docs/workflow.md). Secrets"
        " appear only as salted fingerprints.",
    ),
    "drift": (
        DriftReportDoc,
        "provisioner drift report",
        "`provisioner drift --format json`: the plans made with a refresh (drift, unmanaged"
        " bots, changes not applied yet) and the apps that could not be checked.",
    ),
}


def generated_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of the ``plan`` or ``drift`` document."""
    document, title, description = _HEADS[name]
    defs: dict[str, Any] = {}
    root = typed_schema(document, defs)
    body = defs.pop(root["$ref"].rpartition("/")[2])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}{name}.schema.json",
        "title": title,
        "description": description,
        **{key: value for key, value in body.items() if key != "description"},
        "$defs": dict(sorted(defs.items())),
    }


_SCALARS: dict[Any, dict[str, str]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def typed_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a type hint; a ``TypedDict`` goes to ``defs`` (by class name) and
    is referred to."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return {}
    if is_typeddict(hint):
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # taken: a document that refers to itself stops here
            defs[hint.__name__] = _object(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [typed_schema(arg, defs) for arg in args]}
    if origin is list:
        return {"type": "array", "items": typed_schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": typed_schema(args[1], defs)}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    raise TypeError(f"no JSON Schema for {hint!r}")  # pragma: no cover - a new kind of hint


def _object(document: Any, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    for key, hint in get_type_hints(document, include_extras=True).items():
        if get_origin(hint) is NotRequired:
            hint = get_args(hint)[0]
        else:
            required.append(key)
        properties[key] = typed_schema(hint, defs)
    description = " ".join(inspect.cleandoc(document.__doc__ or "").split())
    return {
        **({"description": description} if description else {}),
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def generated_schema_text(name: str) -> str:
    """:func:`generated_schema` as the shipped file holds it (indent 2, trailing newline)."""
    return json.dumps(generated_schema(name), indent=2, ensure_ascii=False) + "\n"
