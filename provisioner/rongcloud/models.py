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


class GetBotsRequest(_Wire):
    """Body of ``/v3/bot/get.json``: at most 20 ids a call."""

    userIds: list[str]


class DeleteBotRequest(_Wire):
    """Body of ``/v3/bot/delete.json``."""

    userId: str


class QueryBotsRequest(_Wire):
    """Body of ``/v3/bot/query.json``; pages start at 1."""

    page: int
    pageSize: int
    includeIntegration: bool


class Envelope(_Wire):
    """What every answer carries: ``code`` (200 = success) and, on failure, ``errorMessage``."""

    code: int
    errorMessage: str | None = None


class GetBotsResponse(Envelope):
    """Answer of ``/v3/bot/get.json``; unknown ids are simply absent from ``bots``."""

    bots: list[BotPayload] = Field(default_factory=list)


class QueryBotsResponse(Envelope):
    """Answer of ``/v3/bot/query.json``; ``hasNext`` says whether another page follows."""

    bots: list[BotPayload] = Field(default_factory=list)
    total: int | None = None
    hasNext: bool = False
