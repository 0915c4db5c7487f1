"""Pydantic models of the manifests. They mirror ``schemas/*.schema.json``; a test proves both
give the same verdict. Field names are RongCloud's own (camelCase).

String values may hold ``${NAME}`` references (see :mod:`provisioner.secrets`); models keep them
unresolved. ``auth.apiKey`` and ``appSecret`` must be references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

IntegrationType = Literal["webhook", "dify_chat", "dify_completion", "dify_chatflow"]
DIFY_TYPES: frozenset[str] = frozenset({"dify_chat", "dify_completion", "dify_chatflow"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Auth(_Strict):
    apiKey: str


class Integration(_Strict):
    type: IntegrationType
    callbackUrl: str
    enabled: bool = True
    objectNames: list[str] | None = None
    events: list[str] | None = None
    stream: bool = True
    handleResponse: bool = True
    auth: Auth | None = None


class Bot(_Strict):
    userId: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    type: Annotated[str, Field(min_length=1, max_length=128)]
    profileUrl: Annotated[str, Field(min_length=1, max_length=256)]
    metadata: dict[str, str] = Field(default_factory=dict)
    integrations: Annotated[list[Integration], Field(min_length=1)]
    protect: bool = False
    """Not sent to RongCloud: blocks the bot's deletion until unprotected in a separate apply."""


class StateSettings(_Strict):
    backend: Literal["file"] = "file"
    path: str | None = None
    """Relative to the working directory; default ``.provisioner/state/<app>.json``."""


class AppSettings(_Strict):
    endpoint: str
    """``local`` (embedded emulator), a data center (cn, sg, sg-b, na, sa), or a base URL."""
    appKey: str | None = None
    appSecret: str | None = None
    rateLimit: float | None = None
    """Calls per second for this app key (default 50, at most 100)."""
    state: StateSettings = Field(default_factory=StateSettings)


class DesiredApp(BaseModel):
    """One validated app folder: what git says should exist."""

    model_config = ConfigDict(frozen=True)

    name: str
    folder: Path
    settings: AppSettings
    bots: tuple[Bot, ...]
    sources: dict[str, str]
    """userId -> manifest file (as given to the user), for messages."""
