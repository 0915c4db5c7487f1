"""The app's input form (``GET /parameters`` ``user_input_form``) against what RongCloud fills,
checked the way Dify checks every message (``base_app_generator._validate_inputs``).

For each variable the form declares: its kind (``text-input``, ``paragraph``, ``select``,
``number``), ``required``, ``max_length`` and ``options``. What RongCloud puts in each
variable it fills comes from :func:`~provisioner.dify.protocol.filled_values`: the same value
for every message to the bot (``bot_name``, ``data_channelType``...), or one that changes
with the user's message (``query`` of a completion app, ``data_content``), the sender or the
time. Findings:

* ``dify-required-inputs``: a required variable RongCloud does not fill (every message fails);
* ``dify-query-missing``: a completion app without ``query``;
* ``dify-input-short`` (warning): a variable filled with the user's message whose
  ``max_length`` is under :data:`MESSAGE_LENGTH` characters: Dify refuses every longer message;
* ``dify-input-too-long``: a variable filled with the same value every time, longer than its
  ``max_length``;
* ``dify-select-unmatched``: a ``select`` RongCloud fills with a value none of its options
  can be (the same value every time, not an option; or a changing value no option can take);
  ``dify-select-narrow`` (warning): a ``select`` filled with the user's message or the
  sender, so only messages that are exactly an option pass;
* ``dify-number-unmatched``: a ``number`` RongCloud fills with text that is never a number.

The values themselves are never printed (a bot's fields may come from ``${NAME}``
references): a finding names the variable and, from Dify, its limit or options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.diagnostics import Diagnostic, Severity
from provisioner.dify.protocol import Filled, could_fill, filled_values
from provisioner.dify.targets import Target

MESSAGE_LENGTH = 2000
"""A message shorter than this must always pass: a ``max_length`` below it is a warning."""
URL = ("callbackUrl",)
SAMPLE_NUMBER = "12345"
WHAT_VARIES = {"message": "the user's message", "sender": "the sender's userId", "time": "the time"}


@dataclass(frozen=True)
class FormVariable:
    """One well-formed item of ``user_input_form``."""

    name: str
    kind: str
    required: bool
    max_length: int | None
    options: tuple[str, ...]


def input_findings(target: Target, parameters: Mapping[str, Any]) -> list[Diagnostic]:
    """The findings of the module docstring for ``parameters`` (Dify's answer)."""
    form = parameters.get("user_input_form")
    if not isinstance(form, list):
        return [
            target.finding(
                URL,
                "dify-bad-answer",
                "the answer to GET /parameters has no user_input_form list",
                "check that callbackUrl is the Dify API base ending in /v1, not a proxy or "
                "another service",
            )
        ]
    variables = form_variables(form)
    filled = filled_values(target.integration.type, target.callback_bot)
    found = _missing(target, variables, filled)
    for variable in variables:
        how = filled.get(variable.name)
        if how is not None:
            found += _fit(target, variable, how)
    return found


def form_variables(form: Sequence[Any]) -> list[FormVariable]:
    """The well-formed items of ``user_input_form`` (others are skipped)."""
    found = []
    for item in form:
        kind, fields = next(iter(item.items())) if isinstance(item, dict) and item else ("", None)
        if not isinstance(fields, dict) or not isinstance(fields.get("variable"), str):
            continue
        limit, options = fields.get("max_length"), fields.get("options")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            limit = None  # Dify's 0 (or nothing): no limit
        if not isinstance(options, list):
            options = []
        found.append(
            FormVariable(
                fields["variable"],
                str(kind),
                fields.get("required") is True,
                limit,
                tuple(o for o in options if isinstance(o, str)),
            )
        )
    return found


def _missing(
    target: Target, variables: Sequence[FormVariable], filled: Mapping[str, Filled]
) -> list[Diagnostic]:
    kind = target.integration.type
    names = {variable.name for variable in variables}
    found = []
    if kind == "dify_completion" and "query" not in names:
        found.append(
            target.finding(
                (),
                "dify-query-missing",
                "the Dify Text Generator app has no input variable named query; RongCloud "
                "sends the user's text as inputs.query",
                "add a text input named query to the app's input form (Dify: Orchestrate → "
                "Variables)",
            )
        )
    unfilled = [v.name for v in variables if v.required and v.name not in filled]
    if unfilled:
        found.append(
            target.finding(
                (),
                "dify-required-inputs",
                f"the Dify app requires the input variable(s) {', '.join(unfilled)}, which "
                "RongCloud does not fill (it sends the callback's bot_* and data_* fields"
                + (" and query" if kind == "dify_completion" else "")
                + "), so every message would fail",
                "make them optional in the app's input form, or name them after a field "
                "RongCloud fills, e.g. data_fromUserId",
            )
        )
    return found


def _fit(target: Target, variable: FormVariable, how: Filled) -> list[Diagnostic]:
    """What Dify refuses of the values RongCloud puts in ``variable``."""
    if variable.kind == "select":
        return _select(target, variable, how)
    if variable.kind == "number":
        numeric = how.value is None and _could(target, variable, how, SAMPLE_NUMBER)
        if numeric or (how.value is not None and _is_number(how.value)):
            return []
        return [
            _finding(
                target,
                "dify-number-unmatched",
                f"RongCloud fills the number input {variable.name} with "
                f"{_source(how)}, which is not a number: Dify refuses every message",
                f"make {variable.name} a text input in the app's input form",
            )
        ]
    limit = variable.max_length
    if limit is None or variable.kind not in ("text-input", "paragraph"):
        return []
    if how.carries == "message" and limit < MESSAGE_LENGTH:
        return [
            _finding(
                target,
                "dify-input-short",
                f"RongCloud fills the input {variable.name} with the user's message, and the "
                f"app caps it at {limit} characters (max_length): Dify refuses every longer "
                "message (400 invalid_param)",
                f"raise the max length of {variable.name} in the app's input form (Dify: "
                f"Orchestrate → Variables) to at least {MESSAGE_LENGTH}",
                severity="warning",
            )
        ]
    if how.value is not None and len(how.value) > limit:
        return [
            _finding(
                target,
                "dify-input-too-long",
                f"RongCloud fills the input {variable.name} with {_source(how)}, "
                f"{len(how.value)} characters, and the app caps it at {limit} (max_length): "
                "Dify refuses every message",
                f"raise the max length of {variable.name} in the app's input form",
            )
        ]
    return []


def _select(target: Target, variable: FormVariable, how: Filled) -> list[Diagnostic]:
    options = ", ".join(variable.options) or "none"
    if how.value is not None:
        if how.value in variable.options:
            return []
        matchable = False
    else:
        matchable = any(_could(target, variable, how, o) for o in variable.options)
    if not matchable:
        return [
            _finding(
                target,
                "dify-select-unmatched",
                f"RongCloud fills the select input {variable.name} with {_source(how)}, which "
                f"none of its options ({options}) can be: Dify refuses every message",
                f"make {variable.name} a text input in the app's input form, or rename it so "
                "RongCloud does not fill it",
            )
        ]
    return [
        _finding(
            target,
            "dify-select-narrow",
            f"RongCloud fills the select input {variable.name} with {_source(how)}: only "
            f"messages that make it exactly one of its options ({options}) pass, Dify refuses "
            "every other",
            f"make {variable.name} a text input in the app's input form",
            severity="warning",
        )
    ]


def _could(target: Target, variable: FormVariable, how: Filled, value: str) -> bool:
    kind = target.integration.type
    return could_fill(kind, target.callback_bot, variable.name, how.carries or "", value)


def _source(how: Filled) -> str:
    if how.carries is None:
        return "the same value for every message to this bot"
    return f"a value that changes with {WHAT_VARIES[how.carries]}"


def _is_number(value: str) -> bool:
    if not value.strip():
        return True  # Dify takes "" as no value
    try:
        float(value) if "." in value else int(value)
    except ValueError:
        return False
    return True


def _finding(
    target: Target, code: str, message: str, hint: str, *, severity: Severity = "error"
) -> Diagnostic:
    return target.finding((), code, message, hint, severity=severity)
