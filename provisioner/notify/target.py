"""What every target module shares: the target with its values resolved, the request it
makes, and how an answer is read. A target module (:mod:`.dingtalk`, :mod:`.feishu`,
:mod:`.wecom`, :mod:`.webhook`) has two functions: ``outgoing(target, summary, lang, now)``
builds the request in the platform's documented format, and ``refusal(response)`` says why
an answer is not a delivery (None: delivered)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from provisioner.models import NotifyType
from provisioner.render.safe import terminal_safe

MAX_SERVER_TEXT = 200
"""Characters of a platform's error message quoted in a warning (untrusted text)."""


@dataclass(frozen=True)
class Resolved:
    """A ``notify`` entry with its ``${NAME}`` values: secrets, never printed."""

    index: int
    type: NotifyType
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """How messages name it: ``notify[0] (dingtalk)``, never by its URL."""
        return f"notify[{self.index}] ({self.type})"


@dataclass(frozen=True)
class Outgoing:
    """One POST: the address (with any signature in its query), the JSON body, headers."""

    url: str = field(repr=False)
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Refusal:
    """Why an answer is not a delivery; ``retry``: worth one more attempt (busy, 5xx)."""

    reason: str
    retry: bool = False


def json_body(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def http_refusal(response: httpx.Response) -> Refusal | None:
    """Any answer but 2xx: 429 and 5xx may be retried."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    return Refusal(f"HTTP {status}", retry=status == 429 or status >= 500)


def coded_refusal(
    response: httpx.Response,
    code_keys: tuple[str, ...],
    message_keys: tuple[str, ...],
    retry_codes: frozenset[int] = frozenset(),
) -> Refusal | None:
    """A platform that answers ``{"<code>": 0, "<message>": "ok"}``: a non-zero code (or no
    code at all) is a refusal naming the code and the platform's message (quoted safely)."""
    document = _json(response)
    code = next((document[key] for key in code_keys if isinstance(document.get(key), int)), None)
    if code == 0 and 200 <= response.status_code < 300:
        return None
    message = next(
        (document[key] for key in message_keys if isinstance(document.get(key), str)), ""
    )
    if code is None:
        refused = http_refusal(response)
        return refused or Refusal(f"HTTP {response.status_code} without a {code_keys[0]}")
    said = f" ({quoted(message)})" if message else ""
    retry = code in retry_codes or response.status_code >= 500
    return Refusal(f"{code_keys[0]} {code}{said}", retry=retry)


def quoted(text: str) -> str:
    """A platform's text, cut and made safe to print."""
    cut = text if len(text) <= MAX_SERVER_TEXT else text[:MAX_SERVER_TEXT] + "…"
    return terminal_safe(cut)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}
