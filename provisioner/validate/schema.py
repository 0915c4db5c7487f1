"""Run the published JSON Schemas and turn their errors into Diagnostics a person can act on.

The schemas (``provisioner/schemas/*.schema.json``, Draft 2020-12) are compiled once per
process. Each ``jsonschema`` error is mapped to the YAML node it concerns (its
``absolute_path``) and to a message with a diagnostic code (see docs/manifest-reference.md).
Messages never print the value of ``auth.apiKey`` or ``appSecret``.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from provisioner.diagnostics import (
    SECRET_FIELDS,
    Diagnostic,
    JsonPath,
    diagnostic_at,
    is_secret_path,
)
from provisioner.manifest import Document
from provisioner.models import DIFY_URL_PATTERN, POLICY_NOTE, URL_PATTERN
from provisioner.validate.characters import character_problem

Kind = Literal["bot", "app"]
_SUGGESTED_VARIABLE = {"apiKey": "DIFY_API_KEY", "appSecret": "RONGCLOUD_APP_SECRET"}
_SUGGESTION = re.compile(r"^did you mean '([^']+)'\?$")
_DIFY_ENDPOINTS = ("/chat-messages", "/completion-messages", "/workflows/run")


def load_schema(name: str) -> dict[str, Any]:
    """The published schema ``<name>.schema.json`` (``bot``, ``app`` or ``app-bundle``)."""
    text = resources.files("provisioner").joinpath("schemas", f"{name}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_json_number(checker: Any, instance: Any) -> bool:
    """JSON has no NaN: YAML's ``.nan`` is not a number here (pydantic agrees)."""
    return bool(
        isinstance(instance, int | float)
        and not isinstance(instance, bool)
        and not (isinstance(instance, float) and math.isnan(instance))
    )


_Validator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in jsonschema
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_json_number),
)


@functools.cache
def validator(kind: Kind) -> Draft202012Validator:
    """The compiled validator for a bot manifest or for app settings."""
    compiled: Draft202012Validator = _Validator(load_schema(kind))
    return compiled


@functools.cache
def max_bots_per_app() -> int:
    """The assembled-app schema's ``maxItems`` for ``bots`` (RongCloud's quota: 10)."""
    return int(load_schema("app-bundle")["properties"]["bots"]["maxItems"])


def check(document: Document, kind: Kind) -> list[Diagnostic]:
    """Every schema violation of a loaded document, translated and de-duplicated."""
    found: dict[tuple[int, int, str, str, str], Diagnostic] = {}
    for error in validator(kind).iter_errors(document.value):
        for diagnostic in _translate(document, error):
            key = (
                diagnostic.line,
                diagnostic.column,
                diagnostic.path,
                diagnostic.code,
                diagnostic.message,
            )
            found.setdefault(key, diagnostic)
    return _drop_explained_missing(list(found.values()))


def _drop_explained_missing(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop "required key is missing" for a key that an unknown-key hint already suggests
    (``callbackURL`` -> did you mean 'callbackUrl'?): one mistake, one message."""
    suggested = set()
    for diagnostic in diagnostics:
        match = _SUGGESTION.match(diagnostic.hint or "")
        if diagnostic.code == "unknown-key" and match:
            parent = diagnostic.path.rpartition(".")[0]
            suggested.add(f"{parent}.{match.group(1)}" if parent else match.group(1))
    return [d for d in diagnostics if not (d.code == "schema-required" and d.path in suggested)]


def _translate(document: Document, error: ValidationError) -> Iterator[Diagnostic]:
    path: JsonPath = tuple(error.absolute_path)
    keyword = str(error.validator)
    if (problem := character_problem(document, error)) is not None:
        yield problem
        return
    if "propertyNames" in error.schema_path:
        yield _property_name(document, error, path)
        return
    handler = _HANDLERS.get(keyword, _generic)
    yield from handler(document, error, path)


def _required(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    properties = _properties(error)
    for name in _keyword_value(error):
        if name in instance:
            continue
        yield diagnostic_at(
            document.file,
            document.location(path),
            (*path, name),
            "schema-required",
            "required key is missing",
            _required_hint(name, properties.get(name, {})),
        )


def _required_hint(name: str, schema: dict[str, Any]) -> str:
    if name == "auth":
        return "Dify integrations need `auth: {apiKey: ${DIFY_API_KEY}}`"
    if name in ("appKey", "appSecret"):
        return (
            "set appKey and appSecret: ${RONGCLOUD_APP_SECRET} for a RongCloud endpoint, "
            "or use endpoint: local"
        )
    description = re.split(r"\.\s+(?=[A-Z])", str(schema.get("description", "")))[0]
    description = description.rstrip(".")
    return f"add `{name}:` ({description})" if description else f"add `{name}:`"


def _keyword_value(error: ValidationError) -> Any:
    """The failing keyword's value in the schema (``maxLength: 64`` -> 64)."""
    return error.validator_value


def _schema(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _properties(error: ValidationError) -> dict[str, Any]:
    properties = _schema(error).get("properties", {})
    return properties if isinstance(properties, dict) else {}


def _unknown_keys(
    document: Document, error: ValidationError, path: JsonPath
) -> Iterator[Diagnostic]:
    known = list(_properties(error))
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known:
            continue
        yield diagnostic_at(
            document.file,
            document.key_location((*path, key)),
            (*path, key),
            "unknown-key",
            "unknown key",
            _did_you_mean(key, known) or f"allowed keys here: {', '.join(known)}",
        )


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    """``did you mean 'callbackUrl'?`` for a near miss (case-insensitive first)."""
    for choice in choices:
        if choice.lower() == word.lower():
            return f"did you mean '{choice}'?"
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean '{lowered[close[0]]}'?" if close else None


_FALSE_WORDS = frozenset({"false", "no", "n", "off", "0"})
_TYPE_NAMES = {
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "number": "a number",
    "integer": "a whole number",
    "null": "nothing",
}


def _described(document: Document, path: JsonPath, value: Any) -> str:
    """``the boolean false (written `no`)``; never the value of a secret field."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "no value"
    secret = is_secret_path(path)
    kind = "boolean" if isinstance(value, bool) else "number" if not isinstance(value, str) else ""
    if secret:
        return f"a {kind}" if kind else "a string"
    if not kind:
        return f"the string '{value}'"
    text = document.scalar_text.get(path)
    written = json.dumps(value)
    if text is not None and text != written:
        return f"the {kind} {written} (written `{text}`)"
    return f"the {kind} {written}"


def _type(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    expected = _keyword_value(error)
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    value = error.instance
    message = f"expected {wanted}, got {_described(document, path, value)}"
    hint = _type_hint(document, path, names, value)
    yield diagnostic_at(document.file, document.location(path), path, "schema-type", message, hint)


def _type_hint(document: Document, path: JsonPath, names: list[str], value: Any) -> str | None:
    """How to write the value with the type the schema expects (None: nothing to suggest)."""
    if value is None:
        return "write a value after the colon, or remove the key"
    if path and path[-1] == "auth":
        return "write auth: {apiKey: ${DIFY_API_KEY}} and keep the key in the environment"
    if names == ["boolean"] and isinstance(value, str):
        word = "false" if value.lower() in _FALSE_WORDS else "true"
        return f"write {path[-1] if path else 'the value'}: {word} without quotes"
    if "string" in names and isinstance(value, bool | int | float):
        return _quote_hint(document, path, value)
    return None


def _quote_hint(document: Document, path: JsonPath, value: bool | int | float) -> str:
    """Quote a number or boolean written where text is expected (``version: "1"``)."""
    text = document.scalar_text.get(path, json.dumps(value))
    if is_secret_path(path):
        return "quote the value to keep it as text"
    if path and isinstance(path[-1], str):
        return f'quote it to keep it as text: {path[-1]}: "{text}"'
    return f'quote it to keep it as text: - "{text}"'


def _min_length(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    limit = int(_keyword_value(error))
    message = "must not be empty" if limit == 1 else f"must be at least {limit} characters long"
    yield diagnostic_at(document.file, document.location(path), path, "schema-min-length", message)


def _max_length(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    length = len(error.instance) if isinstance(error.instance, str) else 0
    yield diagnostic_at(
        document.file,
        document.location(path),
        path,
        "schema-max-length",
        f"is {length} characters long; at most {_keyword_value(error)} allowed",
        "shorten it (lengths count characters, not bytes)",
    )


def _property_name(document: Document, error: ValidationError, path: JsonPath) -> Diagnostic:
    """A metadata key that breaks the key-length rule (reported at the key, path = the map)."""
    key = str(error.instance)
    if error.validator == "minLength":
        message = "a key must not be empty"
    else:
        limit = _keyword_value(error)
        message = f"key '{key}' is {len(key)} characters long; at most {limit} allowed"
    position = document.key_location((*path, key))
    return diagnostic_at(document.file, position, path, "schema-key-length", message)


def _pattern(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    field = path[-1] if path else ""
    value = error.instance if isinstance(error.instance, str) else ""
    if not value:  # an empty string is reported once, by minLength
        return
    if field in SECRET_FIELDS:
        yield _secret_literal(document, path, str(field))
    elif _keyword_value(error) == DIFY_URL_PATTERN:
        if re.search(URL_PATTERN, value):  # a plain URL error is reported on its own
            yield diagnostic_at(
                document.file,
                document.location(path),
                path,
                "dify-callback-url",
                "must be the Dify API base URL ending in /v1",
                _dify_url_hint(value),
            )
    else:
        message = str(_schema(error).get("patternErrorMessage", "has an invalid format"))
        code, hint = _pattern_code_and_hint(path, value)
        yield diagnostic_at(document.file, document.location(path), path, code, message, hint)


def _secret_literal(document: Document, path: JsonPath, field: str) -> Diagnostic:
    variable = _SUGGESTED_VARIABLE[field]
    return diagnostic_at(
        document.file,
        document.location(path),
        path,
        "secret-literal",
        "holds a literal secret; it must be a ${NAME} environment reference",
        f"move the secret to an environment variable and write {field}: ${{{variable}}} "
        f"(never commit the secret itself)",
    )


def _pattern_code_and_hint(path: JsonPath, value: str) -> tuple[str, str | None]:
    """The code and hint of a value that does not match its field's pattern."""
    field = path[-1] if path else ""
    if field in ("profileUrl", "callbackUrl"):
        return "url-invalid", (
            "write an absolute URL including the scheme, e.g. https://example.com/path"
        )
    if field == "endpoint":
        return "endpoint-invalid", (
            "http:// is allowed only for loopback hosts (localhost, 127.x.x.x, [::1]); use https://"
            if value.lower().startswith("http://")
            else "e.g. endpoint: cn, or endpoint: local for the embedded emulator"
        )
    state_hint = _STATE_PATTERN_HINTS.get(str(field)) if path[:1] == ("state",) else None
    return "schema-pattern", state_hint


_STATE_PATTERN_HINTS = {
    "remote": "add the repository as a remote (`git remote add NAME URL`) and give its name",
    "branch": "e.g. branch: provisioner-state",
    "schema": "e.g. schema: provisioner",
}


def _dify_url_hint(value: str) -> str:
    base = value.rstrip("/")
    for suffix in _DIFY_ENDPOINTS:
        if base.endswith(suffix):
            return f"use the API base without the endpoint path: {base.removesuffix(suffix)}"
    if base.endswith("/v1"):
        return f"drop the trailing slash: {base}"
    return "e.g. https://api.dify.ai/v1 (self-hosted: https://<your-dify-host>/v1)"


def _enum(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    choices = [str(choice) for choice in _keyword_value(error)]
    value = error.instance
    listed = ", ".join(choices)
    if isinstance(value, str):
        message = f"unknown value '{value}'; expected one of {listed}"
        hint = _did_you_mean(value, choices)
    else:
        message = f"expected one of {listed}, got {_described(document, path, value)}"
        hint = None
    yield diagnostic_at(document.file, document.location(path), path, "schema-enum", message, hint)


def _const(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    expected = _keyword_value(error)
    if "objectNames" in path:
        yield diagnostic_at(
            document.file,
            document.location(path),
            path,
            "dify-object-names",
            f"Dify integrations accept only {expected}, not {json.dumps(error.instance)} "
            f"({POLICY_NOTE})",
            "remove it; to receive other message types, add a webhook integration",
        )
        return
    yield from _generic(document, error, path)


def _max_properties(
    document: Document, error: ValidationError, path: JsonPath
) -> Iterator[Diagnostic]:
    count = len(error.instance) if isinstance(error.instance, dict) else 0
    yield diagnostic_at(
        document.file,
        document.location(path),
        path,
        "schema-max-properties",
        f"has {count} pairs; at most {_keyword_value(error)} allowed",
        "RongCloud keeps at most 16 metadata pairs per bot; remove some",
    )


def _min_items(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    field = path[-1] if path else ""
    message = (
        "must list at least one integration"
        if field == "integrations"
        else f"must list at least {_keyword_value(error)} item(s)"
    )
    hint = "add a webhook or a Dify integration" if field == "integrations" else None
    yield diagnostic_at(
        document.file, document.location(path), path, "schema-min-items", message, hint
    )


def _range(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    limit = _keyword_value(error)
    words = {
        "exclusiveMinimum": f"must be greater than {limit}",
        "minimum": f"must be at least {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "maximum": f"must be at most {limit}",
    }
    message = f"{words[str(error.validator)]}, got {json.dumps(error.instance)}"
    hint = "RongCloud allows at most 100 calls per second" if "rateLimit" in path else None
    yield diagnostic_at(document.file, document.location(path), path, "schema-range", message, hint)


def _generic(document: Document, error: ValidationError, path: JsonPath) -> Iterator[Diagnostic]:
    message = "is not valid here" if is_secret_path(path) else error.message
    yield diagnostic_at(
        document.file, document.location(path), path, f"schema-{error.validator}", message
    )


_HANDLERS = {
    "required": _required,
    "additionalProperties": _unknown_keys,
    "type": _type,
    "minLength": _min_length,
    "maxLength": _max_length,
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "maxProperties": _max_properties,
    "minItems": _min_items,
    "exclusiveMinimum": _range,
    "minimum": _range,
    "exclusiveMaximum": _range,
    "maximum": _range,
}
