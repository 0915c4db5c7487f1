"""Request-body checks with the limits of RongCloud's bot API (reference §1.1).

Each ``parse_*`` function takes the decoded JSON body and returns the normalised request, or
raises :class:`Rejection` naming the first offending field, e.g.
``integrations[0].callbackUrl: must be an absolute URL``. Normalising fills the defaults the
real service presumably applies (``enabled``, ``stream``, ``handleResponse``: true) and drops
fields the emulator does not know (``createdAt``, SDK-only ``agent``...). A Dify integration
needs ``auth.apiKey``, as RongCloud's Dify-callback page says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisioner.emulator.codes import (
    CODE_PARAMETER,
    CODE_TOO_MANY,
    INVENTED_CODES,
    STATUS_BAD_REQUEST,
)

INTEGRATION_TYPES = ("webhook", "dify_chat", "dify_completion", "dify_chatflow")
DIFY_TYPES = frozenset(INTEGRATION_TYPES) - {"webhook"}
MAX_IDS_PER_GET = 20
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
MAX_PAGE = 2**31 - 1  # keeps the row offset inside SQLite's 64-bit integers
_BOOLEAN_DEFAULTS = {"enabled": True, "stream": True, "handleResponse": True}


class Rejection(Exception):
    """A request the emulator answers with an error envelope (caught inside the app).

    ``invented``: RongCloud documents no code for this outcome; ``code`` is the emulator's own
    (the switch ``random_undocumented_codes`` replaces it with a random one).
    """

    def __init__(self, status: int, code: int, message: str, *, invented: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.invented = invented


def parameter_error(field: str, problem: str, code: int = CODE_PARAMETER) -> Rejection:
    """400 / 1002 (or ``code``) naming the field."""
    return Rejection(
        STATUS_BAD_REQUEST, code, f"{field}: {problem}", invented=code in INVENTED_CODES
    )


@dataclass(frozen=True)
class BotRules:
    """What a create or update body may hold where RongCloud's docs are silent (the profile
    decides): ``None`` accepts it, a code refuses it (HTTP 400) with that code."""

    numeric_metadata: int | None = None
    """A metadata value that is a JSON number (RongCloud's guide sends ``{"version": 1}``):
    accepted and kept as its text (``"1"``), as a Map<String,String> would read it."""
    same_type: int | None = CODE_PARAMETER
    """A second integration of a type the bot already has."""


@dataclass(frozen=True)
class QueryRequest:
    page: int
    page_size: int
    include_integration: bool


def parse_bot(body: object, rules: BotRules = BotRules()) -> dict[str, Any]:
    """A create/update body as the normalised bot to store."""
    data = _object(body, "body")
    bot: dict[str, Any] = {"userId": _user_id(data.get("userId"), "userId")}
    bot["name"] = _text(data.get("name"), "name", 128)
    bot["type"] = _text(data.get("type"), "type", 128)
    bot["profileUrl"] = _text(data.get("profileUrl"), "profileUrl", 256)
    if data.get("metadata") is not None:
        bot["metadata"] = _metadata(data["metadata"], rules.numeric_metadata)
    bot["integrations"] = _integrations(data.get("integrations"), rules.same_type)
    return bot


def parse_user_id_body(body: object) -> str:
    """The ``userId`` of a delete body."""
    return _user_id(_object(body, "body").get("userId"), "userId")


def parse_user_ids(body: object) -> list[str]:
    """The ``userIds`` of a get body, duplicates removed, order kept."""
    raw = _object(body, "body").get("userIds")
    if raw is None:
        raise parameter_error("userIds", "is required")
    if not isinstance(raw, list):
        raise parameter_error("userIds", "must be an array of strings")
    if not raw:
        raise parameter_error("userIds", "must hold at least one id")
    if len(raw) > MAX_IDS_PER_GET:
        raise Rejection(
            STATUS_BAD_REQUEST,
            CODE_TOO_MANY,
            f"userIds: at most {MAX_IDS_PER_GET} ids per call, got {len(raw)}",
            invented=True,
        )
    ids = [_user_id(item, f"userIds[{index}]") for index, item in enumerate(raw)]
    return list(dict.fromkeys(ids))


def parse_query(body: object) -> QueryRequest:
    """A query body with its defaults filled in."""
    data = _object(body, "body")
    page = _integer(data.get("page", 1), "page", 1, MAX_PAGE)
    page_size = _integer(data.get("pageSize", DEFAULT_PAGE_SIZE), "pageSize", 1, MAX_PAGE_SIZE)
    include = data.get("includeIntegration", False)
    if not isinstance(include, bool):
        raise parameter_error("includeIntegration", "must be a boolean")
    return QueryRequest(page=page, page_size=page_size, include_integration=include)


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise parameter_error(field, "must be a JSON object")
    return value


def _user_id(value: object, field: str) -> str:
    text = _text(value, field, 64)
    if any(char.isspace() for char in text):
        raise parameter_error(field, "must not contain whitespace")
    return text


def _text(value: object, field: str, limit: int, *, minimum: int = 1) -> str:
    if value is None:
        raise parameter_error(field, "is required")
    if not isinstance(value, str):
        raise parameter_error(field, "must be a string")
    if not minimum <= len(value) <= limit:
        raise parameter_error(field, f"must be {minimum}-{limit} characters, got {len(value)}")
    return value


def _integer(value: object, field: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise parameter_error(field, "must be an integer")
    if not minimum <= value <= maximum:
        raise parameter_error(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _metadata(value: object, numbers: int | None) -> dict[str, str]:
    data = _object(value, "metadata")
    if len(data) > 16:
        raise parameter_error("metadata", f"at most 16 pairs, got {len(data)}")
    result: dict[str, str] = {}
    for key, item in data.items():
        if not 1 <= len(key) <= 32:
            raise parameter_error(f"metadata.{key}", "key must be 1-32 characters")
        if isinstance(item, int | float) and not isinstance(item, bool):
            if numbers is not None:
                raise parameter_error(f"metadata.{key}", "must be a string", numbers)
            item = json.dumps(item)
        result[key] = _text(item, f"metadata.{key}", 128)
    return result


def _integrations(value: object, same_type: int | None) -> list[dict[str, Any]]:
    if value is None:
        raise parameter_error("integrations", "is required")
    if not isinstance(value, list):
        raise parameter_error("integrations", "must be an array")
    if not value:
        raise parameter_error("integrations", "must hold at least one integration")
    seen: set[str] = set()
    result = []
    for index, item in enumerate(value):
        integration = _integration(item, f"integrations[{index}]")
        if integration["type"] in seen and same_type is not None:
            raise parameter_error(
                f"integrations[{index}].type",
                f"only one integration of type {integration['type']} per bot",
                same_type,
            )
        seen.add(integration["type"])
        result.append(integration)
    return result


def _integration(value: object, where: str) -> dict[str, Any]:
    data = _object(value, where)
    kind = data.get("type")
    if kind is None:
        raise parameter_error(f"{where}.type", "is required")
    if kind not in INTEGRATION_TYPES:
        raise parameter_error(f"{where}.type", f"must be one of {', '.join(INTEGRATION_TYPES)}")
    integration: dict[str, Any] = {"type": kind, "callbackUrl": _url(data, where)}
    for name, default in _BOOLEAN_DEFAULTS.items():
        flag = data.get(name, default)
        if not isinstance(flag, bool):
            raise parameter_error(f"{where}.{name}", "must be a boolean")
        integration[name] = flag
    for name in ("objectNames", "events"):
        if data.get(name) is not None:
            integration[name] = _strings(data[name], f"{where}.{name}")
    if data.get("auth") is not None:
        auth = _object(data["auth"], f"{where}.auth")
        integration["auth"] = {"apiKey": _text(auth.get("apiKey"), f"{where}.auth.apiKey", 512)}
    elif kind in DIFY_TYPES:
        raise parameter_error(f"{where}.auth.apiKey", "is required for Dify integrations")
    return integration


def _url(data: dict[str, Any], where: str) -> str:
    field = f"{where}.callbackUrl"
    url = _text(data.get("callbackUrl"), field, 1024)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise parameter_error(field, "must be an absolute URL")
    return url


def _strings(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise parameter_error(field, "must be an array of strings")
    for index, item in enumerate(value):
        _text(item, f"{field}[{index}]", 128)
    return list(value)
