"""What the Dify stand-in accepts, checked as Dify checks it.

* The bodies and queries are pydantic models named and shaped as Dify's own
  (``ChatRequestPayload``, ``CompletionRequestPayload``, ``MessageListQuery``,
  ``ConversationListQuery`` in ``api/controllers/service_api``), so a refusal's message is the
  text pydantic gives Dify (Dify answers any ``ValueError`` as 400 ``invalid_param`` with
  ``str(error)``): a ``conversation_id`` that is not a UUID, a body without ``inputs``...
* :func:`checked_inputs` is Dify's ``_validate_inputs`` over the app's input form: a
  required variable is missing only when it is ``None`` (``""`` is given); ``text-input``,
  ``paragraph`` and ``select`` take strings only; a ``number`` takes a number or a numeric
  string (``""`` counts as none); a ``select`` value must be one of its ``options``; a text
  longer than ``max_length`` is refused; variables outside the form are dropped. Each
  refusal is Dify's message (``query in input form must be less than 48 characters``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator

from provisioner.emulator.dify.apps import DifyInput

TEXT_KINDS = frozenset({"text-input", "paragraph", "select"})
Model = TypeVar("Model", bound=BaseModel)
DEFAULT_USER = "DEFAULT-USER"
"""The end user Dify's list endpoints read for when a request names none."""


class InputRefused(ValueError):
    """A request Dify refuses with 400 ``invalid_param`` (the message is Dify's)."""


class InputCrash(TypeError):
    """A value Dify's checks do not expect (Dify answers 500 ``internal_server_error``)."""


def _uuid_or_none(value: object) -> str | None:
    """Dify's ``UUIDStrOrEmpty``: blank is none, anything else must be a UUID."""
    if isinstance(value, str):
        value = value.strip()
    if not value:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise ValueError("must be a valid UUID") from exc


class CompletionRequestPayload(BaseModel):
    inputs: dict[str, Any]
    query: str = ""
    files: list[dict[str, Any]] | None = None
    response_mode: Literal["blocking", "streaming"] | None = None


class ChatRequestPayload(BaseModel):
    inputs: dict[str, Any]
    query: str
    files: list[dict[str, Any]] | None = None
    response_mode: Literal["blocking", "streaming"] | None = None
    conversation_id: str | None = None

    @field_validator("conversation_id", mode="before")
    @classmethod
    def _conversation(cls, value: object) -> str | None:
        try:
            return _uuid_or_none(value)
        except ValueError:
            raise ValueError("conversation_id must be a valid UUID") from None


class MessageListQuery(BaseModel):
    conversation_id: str | None
    first_id: str | None = None
    limit: int = Field(default=20, ge=1, le=100)

    @field_validator("conversation_id", "first_id", mode="before")
    @classmethod
    def _ids(cls, value: object) -> str | None:
        return _uuid_or_none(value)


class ConversationListQuery(BaseModel):
    last_id: str | None = None
    limit: int = Field(default=20, ge=1, le=100)
    sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] = "-updated_at"

    @field_validator("last_id", mode="before")
    @classmethod
    def _last(cls, value: object) -> str | None:
        return _uuid_or_none(value)


def parsed(model: type[Model], data: object) -> Model:
    """``data`` as ``model``; InputRefused with pydantic's text, as Dify answers it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputRefused(str(exc)) from None


def query_fields(
    params: Mapping[str, str], names: Sequence[str], optional: Sequence[str]
) -> dict[str, str]:
    """The query parameters ``names`` that were given; one of ``optional`` given empty counts
    as left out (httpx sends ``None`` as ``name=``, and Dify's SDK passes ``None`` for what
    it omits)."""
    return {
        name: params[name]
        for name in names
        if name in params and not (name in optional and params[name] == "")
    }


# --- the input form -------------------------------------------------------------------------


def checked_inputs(form: Sequence[DifyInput], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs Dify keeps: each variable of ``form``, checked (see the module docstring)."""
    return {item.variable: _checked(item, inputs.get(item.variable)) for item in form}


def _checked(item: DifyInput, value: Any) -> Any:
    name = item.variable
    if value is None:
        if item.required:
            raise InputRefused(f"{name} is required in input form")
        return None  # the stand-in's inputs have no default value
    if item.kind in TEXT_KINDS and not isinstance(value, str):
        raise InputRefused(f"(type '{item.kind}') {name} in input form must be a string")
    if item.kind == "number":
        return _number(name, value)
    if item.kind == "select" and value not in item.options:
        raise InputRefused(
            f"{name} in input form must be one of the following: {list(item.options)}"
        )
    if item.kind != "select" and item.max_length and len(value) > item.max_length:
        raise InputRefused(f"{name} in input form must be less than {item.max_length} characters")
    return value.replace("\x00", "")


def _number(name: str, value: Any) -> int | float | None:
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        raise InputCrash(f"expected value type int, float or str, got {type(value)}")
    if not value.strip():
        return None
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        raise InputRefused(f"{name} in input form must be a valid number") from None
