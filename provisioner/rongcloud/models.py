"""Typed request/response bodies of RongCloud's bot API (``/v3/bot/*.json``).

Requests are dumped with ``wire()`` (no ``None`` fields); responses ignore unknown fields so
new server fields never break a read. ``auth.apiKey`` is excluded from ``repr``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body to send: API field names, ``None`` fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


class AuthPayload(_Wire):
    apiKey: str = Field(repr=False)


class IntegrationPayload(_Wire):
    type: str
    callbackUrl: str
    enabled: bool | None = None
    objectNames: list[str] | None = None
    events: list[str] | None = None
    stream: bool | None = None
    handleResponse: bool | None = None
    auth: AuthPayload | None = None


class BotPayload(_Wire):
    userId: str
    name: str | None = None
    type: str | None = None
    profileUrl: str | None = None
    metadata: dict[str, str] | None = None
    integrations: list[IntegrationPayload] | None = None
    createdAt: int | None = None
    updatedAt: int | None = None
