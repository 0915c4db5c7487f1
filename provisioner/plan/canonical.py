"""Canonical forms of a bot: the API body as recorded in state and compared by the plan.

Pure (no I/O; the environment is passed in). One form serves three sources:

- :func:`canonical_spec`: a manifest bot, with every ``${NAME}`` string replaced by
  ``{"sensitive": fingerprint, "template": "the string as written"}`` (never the value; the
  template is what git holds, so a plan without the secret can tell an unchanged reference);
- :func:`canonical_live`: a bot as the server returns it, fingerprinted the same way;
- :func:`api_payload`: the manifest bot with references resolved, for the wire only.

The canonical form fills the API defaults (``enabled``, ``stream`` and ``handleResponse`` true,
``metadata`` ``{}``, ``objectNames``/``events`` ``[]``), orders integrations by ``type`` and
leaves out ``protect`` (not an API field) and server bookkeeping (``createdAt``/``updatedAt``),
so an apply followed by a plan shows no changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from provisioner.models import Bot, Integration
from provisioner.rongcloud.models import AuthPayload, BotPayload, IntegrationPayload
from provisioner.secrets import (
    FINGERPRINT_PREFIX,
    SENSITIVE_KEY,
    TEMPLATE_KEY,
    fingerprint,
    is_available,
    is_sensitive,
    is_sensitive_value,
    references,
    resolve,
)
from provisioner.secrets.urls import mask_credentials

UNCHECKED_FINGERPRINT = "unchecked"
"""Fingerprint of a secret whose value this run does not have, with no recorded value for
the same reference to stand for it (a new bot or a changed reference, planned without
secrets): it cannot be compared, and apply computes the real one."""

UNKNOWN_FINGERPRINT = "unknown"
"""Fingerprint of a secret the server masked and that was never recorded: it cannot be
compared, so it always differs from a real fingerprint (the next apply sets it)."""

SERVER_FIELDS = ("createdAt", "updatedAt")
"""What the server adds to a bot; kept in state as ``RecordedBot.server``, never compared."""


def canonical_spec(
    bot: Bot,
    env: Mapping[str, str],
    salt: str,
    *,
    recorded: Mapping[str, Any] | None = None,
    unchecked: set[str] | None = None,
) -> dict[str, Any]:
    """The canonical form of a manifest bot.

    A variable that is unset or empty raises ConfigError naming it — unless ``unchecked`` is
    given (a plan without secrets): then its name is added there, and the value is taken as
    the one ``recorded`` holds for the same reference at the same place (unchanged, not
    checked in this run), or :data:`UNCHECKED_FINGERPRINT` when nothing is recorded for it.
    """
    body = _normalise(bot.model_dump(mode="json", exclude={"protect"}))
    # only a reference this run cannot resolve (``unchecked``) looks at the recorded spec
    reference = _normalise(dict(recorded)) if recorded is not None and unchecked is not None else {}

    def replace(text: str, recorded_node: Any) -> Any:
        return _spec_string(text, recorded_node, env, salt, unchecked)

    _replace_references(body, reference, replace)
    return _mask_url_credentials(body, salt)


DIGEST_PREFIX = "sha256:"
_DIGEST_HEX = 32
"""128 bits of SHA-256: collisions are out of reach, and a review record stays small."""


def review_form(bot: Bot) -> dict[str, Any]:
    """A manifest bot as a review saw it: the canonical form with every string as written in
    git (``${NAME}`` references unresolved, so it needs no secret) and ``protect``."""
    return _normalise(bot.model_dump(mode="json"))


def bot_digest(bot: Bot) -> str:
    """The digest of a manifest bot's desired spec (:func:`review_form`): what a review of
    the bot saw, computed the same way with or without secrets."""
    text = json.dumps(review_form(bot), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST_HEX]


def with_templates(recorded: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """``recorded`` (a spec from a state written before templates were recorded) with the
    template of ``desired`` added to each marker that holds the same fingerprint, so the
    same secret never shows as a change because of its recording.

    A spec whose markers all hold their template (any state this release wrote) comes back
    as a new mapping sharing its values with ``recorded`` (recorded specs are never changed
    in place)."""
    if not _lacks_template(recorded):
        return dict(recorded)

    def visit(node: Any, wanted: Any, path: tuple[str, ...]) -> Any:
        if not is_sensitive_value(node):
            return DESCEND
        same = is_sensitive_value(wanted) and wanted[SENSITIVE_KEY] == node[SENSITIVE_KEY]
        if same and TEMPLATE_KEY not in node and TEMPLATE_KEY in wanted:
            return {**node, TEMPLATE_KEY: wanted[TEMPLATE_KEY]}
        return node

    upgraded: dict[str, Any] = walk_aligned(dict(recorded), desired, visit)
    return upgraded


def _lacks_template(value: Any) -> bool:
    """True when ``value`` holds a sensitive marker without its template."""
    if isinstance(value, dict):
        if is_sensitive_value(value):
            return TEMPLATE_KEY not in value
        return any(map(_lacks_template, filter(_is_container, value.values())))
    if isinstance(value, list):
        return any(map(_lacks_template, filter(_is_container, value)))
    return False


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


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

    def visit(node: Any, recorded_node: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(node, str):
            return DESCEND
        return _live_string(node, recorded_node, salt, path)

    result: dict[str, Any] = _mask_url_credentials(walk_aligned(body, reference, visit), salt)
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


DESCEND: Any = object()
"""What a visitor of :func:`walk_aligned` returns for a node it does not replace."""
Visitor = Callable[[Any, Any, tuple[str, ...]], Any]
StringVisitor = Callable[[str, Any], Any]
"""``(a string holding ${, the node at the same place in the base) -> its replacement``."""


def walk_aligned(value: Any, base: Any, visit: Visitor, path: tuple[str, ...] = ()) -> Any:
    """``value`` rebuilt with each node replaced by ``visit(node, the node at the same place in
    base, path)``, or descended into where it returns :data:`DESCEND`. Integrations are
    matched by type (a spec's ``integrations``), other lists by position."""
    replaced = visit(value, base, path)
    if replaced is not DESCEND:
        return replaced
    if isinstance(value, dict):
        ref = base if isinstance(base, dict) else {}
        return {
            key: walk_aligned(item, ref.get(key), visit, (*path, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        if path == ("integrations",):
            by_type = {item.get("type"): item for item in base or [] if isinstance(item, dict)}
            return [
                walk_aligned(item, by_type.get(item.get("type")), visit, (*path, "[]"))
                for item in value
            ]
        items = base if isinstance(base, list) else []
        return [
            walk_aligned(item, items[i] if i < len(items) else None, visit, path)
            for i, item in enumerate(value)
        ]
    return value


def _replace_references(body: dict[str, Any], base: Any, replace: StringVisitor) -> None:
    """Replace, in place, each string of ``body`` (a fresh canonical body) holding ``${`` by
    ``replace(string, the node at the same place in base)``, with the alignment of
    :func:`walk_aligned` (integrations by type, other lists by position). The other strings
    hold no ``${NAME}`` reference, so they would come back unchanged."""
    ref = base if isinstance(base, dict) else {}
    for key, item in body.items():
        if key == "integrations" and isinstance(item, list):
            by_type = {
                each.get("type"): each for each in ref.get(key) or [] if isinstance(each, dict)
            }
            for index, each in enumerate(item):
                item[index] = _replaced(each, by_type.get(each.get("type")), replace)
        else:
            body[key] = _replaced(item, ref.get(key), replace)


def _replaced(value: Any, base: Any, replace: StringVisitor) -> Any:
    """``value`` with the strings holding ``${`` replaced (containers changed in place)."""
    if isinstance(value, str):
        return replace(value, base) if "${" in value else value
    if isinstance(value, dict):
        ref = base if isinstance(base, dict) else {}
        for key, item in value.items():
            if not isinstance(item, str) or "${" in item:
                value[key] = _replaced(item, ref.get(key), replace)
    elif isinstance(value, list):
        items = base if isinstance(base, list) else []
        for index, item in enumerate(value):
            if not isinstance(item, str) or "${" in item:
                value[index] = _replaced(
                    item, items[index] if index < len(items) else None, replace
                )
    return value


def _spec_string(
    text: str, recorded: Any, env: Mapping[str, str], salt: str, unchecked: set[str] | None
) -> Any:
    if not is_sensitive(text):
        return text
    missing = [name for name in references(text) if not is_available(name, env)]
    if not missing or unchecked is None:
        return {SENSITIVE_KEY: fingerprint(resolve(text, env), salt), TEMPLATE_KEY: text}
    unchecked.update(missing)
    if is_sensitive_value(recorded) and recorded.get(TEMPLATE_KEY, text) == text:
        return {SENSITIVE_KEY: recorded[SENSITIVE_KEY], TEMPLATE_KEY: text}
    return {SENSITIVE_KEY: UNCHECKED_FINGERPRINT, TEMPLATE_KEY: text}


def _live_string(value: str, reference: Any, salt: str, path: tuple[str, ...]) -> Any:
    always_secret = path[-2:] == ("auth", "apiKey")
    if not (is_sensitive_value(reference) or always_secret):
        return value
    if is_masked(value):
        if is_sensitive_value(reference):
            return dict(reference)
        return {SENSITIVE_KEY: UNKNOWN_FINGERPRINT}
    marker = {SENSITIVE_KEY: fingerprint(value, salt)}
    if is_sensitive_value(reference) and TEMPLATE_KEY in reference:
        marker[TEMPLATE_KEY] = reference[TEMPLATE_KEY]
    return marker
