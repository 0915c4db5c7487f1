"""The Dify integrations to check: one :class:`Target` per Dify integration of each bot, with
its manifest position (every finding points at ``file:line:col``), and what its calls need,
resolved from the environment once (:func:`targets_of`): the key, the API base to call
(:mod:`~provisioner.dify.routing`) and the bot as a callback names it. Nothing after
:func:`targets_of` reads the environment."""

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
    callback_bot: Mapping[str, Any] = field(repr=False)
    """The bot as a callback names it (references resolved: this goes to Dify only)."""
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


def targets_of(app: DesiredApp, env: Mapping[str, str], route: DifyRoute | None) -> list[Target]:
    """The enabled Dify integrations of ``app``'s bots, in manifest order, their references
    resolved from ``env``. ``route`` is the local rule of a local app (``None``: the app is
    not local, call each ``callbackUrl`` as it is)."""
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
            found.append(
                Target(
                    app=app.name,
                    local=route is not None,
                    bot=bot,
                    index=index,
                    integration=integration,
                    document=document,
                    api_key=resolve(integration.auth.apiKey, env),
                    callback_bot=_callback_bot(bot, env),
                    base_url=route.target(url) if route is not None else url.rstrip("/"),
                    routed=route is not None and route.routed(url),
                )
            )
    return found


def _callback_bot(bot: Bot, env: Mapping[str, str]) -> dict[str, Any]:
    """The bot as a callback names it (references resolved: this goes to Dify only)."""
    fields: dict[str, Any] = {
        "userId": bot.userId,
        "name": resolve(bot.name, env),
        "profileUrl": resolve(bot.profileUrl, env),
        "type": resolve(bot.type, env),
    }
    if bot.metadata:
        fields["metadata"] = {key: resolve(value, env) for key, value in bot.metadata.items()}
    return fields
