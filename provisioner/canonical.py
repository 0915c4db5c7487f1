"""Canonical forms of a bot: the API body as recorded in state and compared by the plan.

Pure (no I/O; the environment is passed in). One form serves three sources:

- :func:`canonical_spec`: a manifest bot, with every ``${NAME}`` string replaced by
  ``{"sensitive": fingerprint}`` (never the value);
- :func:`canonical_live`: a bot as the server returns it, fingerprinted the same way;
- :func:`api_payload`: the manifest bot with references resolved, for the wire only.

The canonical form fills the API defaults (``enabled``, ``stream`` and ``handleResponse`` true,
``metadata`` ``{}``, ``objectNames``/``events`` ``[]``), orders integrations by ``type`` and
leaves out ``protect`` (not an API field) and server bookkeeping (``createdAt``/``updatedAt``),
so an apply followed by a plan shows no changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.models import Bot, Integration
from provisioner.rongcloud.models import AuthPayload, BotPayload, IntegrationPayload
from provisioner.secrets import FINGERPRINT_PREFIX, fingerprint, is_sensitive, resolve
from provisioner.urls import mask_credentials

SENSITIVE_KEY = "sensitive"
"""A sensitive value in a canonical form is ``{"sensitive": <fingerprint>}``."""

UNKNOWN_FINGERPRINT = "unknown"
"""Fingerprint of a secret the server masked and that was never recorded: it cannot be
compared, so it always differs from a real fingerprint (the next apply sets it)."""

SERVER_FIELDS = ("createdAt", "updatedAt")
"""What the server adds to a bot; kept in state as ``RecordedBot.server``, never compared."""


def is_sensitive_value(value: object) -> bool:
    """True for a canonical sensitive marker ``{"sensitive": fingerprint}``."""
    return isinstance(value, dict) and set(value) == {SENSITIVE_KEY}


def canonical_spec(bot: Bot, env: Mapping[str, str], salt: str) -> dict[str, Any]:
    """The canonical form of a manifest bot; a missing variable raises ConfigError naming it."""
    body = _normalise(bot.model_dump(mode="json", exclude={"protect"}))
    result: dict[str, Any] = _mask_url_credentials(_fingerprint_references(body, env, salt), salt)
    return result


def api_payload(bot: Bot, env: Mapping[str, str]) -> BotPayload:
    """The full body to send to create/update: references resolved, ``protect`` left out."""
    return BotPayload(
        userId=resolve(bot.userId, env),
        name=resolve(bot.name, env),
        type=resolve(bot.type, env),
        profileUrl=resolve(bot.profileUrl, env),
        metadata={key: resolve(value, env) for key, value in bot.metadata.items()},
        integrations=[_integration_payload(integration, env) for integration in bot.integrations],
    )


def canonical_live(
    bot: BotPayload, salt: str, recorded: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The canonical form of a live bot, comparable with a recorded or desired spec.

    Where ``recorded`` (the recorded spec, or the desired one when adopting) holds a sensitive
    marker, the live value is fingerprinted with ``salt``; ``auth.apiKey`` always is. A masked
    live value (``******``, empty) cannot be compared: the recorded fingerprint is kept, so
    masking never shows as drift (``UNKNOWN_FINGERPRINT`` when nothing was recorded).
    """
    body = _normalise(bot.model_dump(mode="json", exclude=set(SERVER_FIELDS)))
    reference = _normalise(dict(recorded)) if recorded is not None else {}
    result: dict[str, Any] = _mask_url_credentials(
        _fingerprint_like(body, reference, salt, path=()), salt
    )
    return result


def is_masked(value: str) -> bool:
    """A value the server masked: empty, only ``*``, or holding ``***``."""
    return value == "" or set(value) == {"*"} or "***" in value


def _integration_payload(integration: Integration, env: Mapping[str, str]) -> IntegrationPayload:
    auth = integration.auth
    return IntegrationPayload(
        type=integration.type,
        callbackUrl=resolve(integration.callbackUrl, env),
        enabled=integration.enabled,
        objectNames=[resolve(name, env) for name in integration.objectNames]
        if integration.objectNames is not None
        else None,
        events=[resolve(event, env) for event in integration.events]
        if integration.events is not None
        else None,
        stream=integration.stream,
        handleResponse=integration.handleResponse,
        auth=AuthPayload(apiKey=resolve(auth.apiKey, env)) if auth is not None else None,
    )


def _mask_url_credentials(body: dict[str, Any], salt: str) -> dict[str, Any]:
    """Each credential written literally into a URL field (``user:password@``, ``?token=``)
    replaced by ``(sensitive:<12 hex of its salted fingerprint>)``: never shown or recorded,
    still compared."""

    def mask(url: Any) -> Any:
        if not isinstance(url, str):
            return url
        return mask_credentials(url, lambda credential: _credential_marker(credential, salt))

    out = dict(body)
    out["profileUrl"] = mask(out.get("profileUrl"))
    out["integrations"] = [
        {**item, "callbackUrl": mask(item.get("callbackUrl"))} if "callbackUrl" in item else item
        for item in out.get("integrations") or []
    ]
    return out


def _credential_marker(credential: str, salt: str) -> str:
    digest = fingerprint(credential, salt).removeprefix(FINGERPRINT_PREFIX)
    return f"(sensitive:{digest[:CREDENTIAL_DIGITS]})"


CREDENTIAL_DIGITS = 12
"""Hex digits of a literal URL credential's fingerprint kept in its place (48 bits: enough to
tell a change, too few to test guesses against without the salt)."""


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Fill API defaults and order integrations by type (input is a JSON-like dict)."""
    out = {key: value for key, value in body.items() if key not in SERVER_FIELDS}
    out["metadata"] = dict(out.get("metadata") or {})
    integrations = [_normalise_integration(item) for item in out.get("integrations") or []]
    out["integrations"] = sorted(integrations, key=lambda item: str(item.get("type")))
    return out


def _normalise_integration(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in item.items() if value is not None}
    for flag in ("enabled", "stream", "handleResponse"):
        out.setdefault(flag, True)
    for listing in ("objectNames", "events"):
        out[listing] = list(out.get(listing) or [])
    return out


def _fingerprint_references(value: Any, env: Mapping[str, str], salt: str) -> Any:
    if isinstance(value, str):
        if is_sensitive(value):
            return {SENSITIVE_KEY: fingerprint(resolve(value, env), salt)}
        return value
    if isinstance(value, dict):
        return {key: _fingerprint_references(item, env, salt) for key, item in value.items()}
    if isinstance(value, list):
        return [_fingerprint_references(item, env, salt) for item in value]
    return value


def _fingerprint_like(value: Any, reference: Any, salt: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _live_string(value, reference, salt, path)
    if isinstance(value, dict):
        ref = reference if isinstance(reference, dict) else {}
        return {
            key: _fingerprint_like(item, ref.get(key), salt, (*path, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        if path == ("integrations",):
            by_type = {item.get("type"): item for item in reference or [] if isinstance(item, dict)}
            return [
                _fingerprint_like(item, by_type.get(item.get("type")), salt, (*path, "[]"))
                for item in value
            ]
        ref_items = reference if isinstance(reference, list) else []
        return [
            _fingerprint_like(item, ref_items[i] if i < len(ref_items) else None, salt, path)
            for i, item in enumerate(value)
        ]
    return value


def _live_string(value: str, reference: Any, salt: str, path: tuple[str, ...]) -> Any:
    always_secret = path[-2:] == ("auth", "apiKey")
    if not (is_sensitive_value(reference) or always_secret):
        return value
    if is_masked(value):
        if is_sensitive_value(reference):
            return dict(reference)
        return {SENSITIVE_KEY: UNKNOWN_FINGERPRINT}
    return {SENSITIVE_KEY: fingerprint(value, salt)}
