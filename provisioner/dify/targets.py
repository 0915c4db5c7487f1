"""The Dify integrations to check: one :class:`Target` per Dify integration of each bot, with
its manifest position (every finding points at ``file:line:col``), its resolved key and the
API base to call (:mod:`~provisioner.dify.routing`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.diagnostics import Diagnostic, JsonPath, Severity, diagnostic_at
from provisioner.dify.routing import DifyRoute
from provisioner.manifest import Document, load_document
from provisioner.models import DIFY_TYPES, Bot, DesiredApp, Integration
from provisioner.secrets import references, resolve


@dataclass(frozen=True)
class Target:
    """One Dify integration of one bot, ready to be called."""

    app: str
    local: bool
    bot: Bot
    index: int
    integration: Integration
    document: Document = field(repr=False)
    api_key: str = field(repr=False)
    base_url: str | None
    """Where the calls go (``None``: nowhere, see :mod:`~provisioner.dify.routing`)."""
    routed: bool = False
    """True when ``base_url`` is the Dify stand-in instead of ``callbackUrl``."""

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def label(self) -> str:
        """``demo/assistant-bot dify_chatflow``."""
        return f"{self.app}/{self.bot.userId} {self.integration.type}"

    @property
    def key_variable(self) -> str:
        """The ``${NAME}`` that ``auth.apiKey`` references (for hints; never its value)."""
        reference = self.integration.auth.apiKey if self.integration.auth else ""
        names = references(reference)
        return f"${{{names[0]}}}" if names else "auth.apiKey"

    def path(self, *fields: str) -> JsonPath:
        return ("integrations", self.index, *fields)

    def position(self, *fields: str) -> tuple[int, int]:
        return self.document.location(self.path(*fields))

    def finding(
        self,
        fields: tuple[str, ...],
        code: str,
        message: str,
        hint: str | None,
        *,
        severity: Severity = "error",
    ) -> Diagnostic:
        """A diagnostic at this integration's field ``fields`` (``()``: the integration)."""
        return diagnostic_at(
            self.file, self.position(*fields), self.path(*fields), code, message, hint, severity
        )

    def callback_bot(self, env: Mapping[str, str]) -> dict[str, Any]:
        """The bot as a callback names it (references resolved: this goes to Dify only)."""
        bot = self.bot
        fields: dict[str, Any] = {
            "userId": bot.userId,
            "name": resolve(bot.name, env),
            "profileUrl": resolve(bot.profileUrl, env),
            "type": resolve(bot.type, env),
        }
        if bot.metadata:
            fields["metadata"] = {key: resolve(value, env) for key, value in bot.metadata.items()}
        return fields


def targets_of(app: DesiredApp, env: Mapping[str, str], route: DifyRoute | None) -> list[Target]:
    """The enabled Dify integrations of ``app``'s bots, in manifest order. ``route`` is the
    local rule of a local app (``None``: the app is not local, call each ``callbackUrl`` as
    it is)."""
    local = route is not None
    found: list[Target] = []
    for bot in app.bots:
        document: Document | None = None
        for index, integration in enumerate(bot.integrations):
            if integration.type not in DIFY_TYPES or not integration.enabled:
                continue
            if integration.auth is None:  # pragma: no cover - the model requires it
                continue
            if document is None:
                shown = app.sources[bot.userId]
                document = load_document(Path(shown), shown)
            url = resolve(integration.callbackUrl, env)
            base = route.target(url) if route is not None else url.rstrip("/")
            routed = route is not None and route.routed(url)
            key = resolve(integration.auth.apiKey, env)
            found.append(
                Target(app.name, local, bot, index, integration, document, key, base, routed)
            )
    return found
