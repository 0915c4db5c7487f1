"""The bot endpoints over the store, answering as the profile says.

``create``, ``update``, ``delete``, ``get``, ``query`` (``/v3/bot/*.json``) and
``integration_delete`` (``/v3/bot/integration/delete.json``, the one narrower call apply
uses). Where RongCloud's docs are silent the :class:`~provisioner.emulator.bots.profile.Profile`
decides: whether an update replaces the bot, patches it (fields left out are kept; metadata
keys and integrations merged, an integration by its type) or refuses a body that leaves out
a field the bot has; what a duplicate create, an 11th bot, a missing bot or an unknown id on
get answers; whether a read returns ``auth.apiKey`` plain, masked or not at all.
"""

from __future__ import annotations

from typing import Any

from provisioner.emulator import codes
from provisioner.emulator.bots.profile import Profile
from provisioner.emulator.store import BotStore, StoredBot
from provisioner.emulator.validation import (
    INTEGRATION_TYPES,
    Rejection,
    parameter_error,
    parse_bot,
    parse_query,
    parse_user_id_body,
    parse_user_ids,
)

BOT_QUOTA = 10
MASKED_API_KEY = "******"
_KEPT_BY_PATCH = ("metadata", "integrations")
"""Top-level fields a patch keeps when left out (the others are required in every body)."""
_INTEGRATION_OPTIONAL = ("objectNames", "events", "auth")
"""Integration fields that may be left out of a body; the booleans have defaults."""


class BotApi:
    """The bot endpoints over ``store`` with ``profile``'s answers."""

    def __init__(self, store: BotStore, profile: Profile) -> None:
        self.store = store
        self.profile = profile

    def create(self, app_key: str, body: Any) -> dict[str, Any]:
        bot = parse_bot(body, self.profile.bot_rules)
        quota = BOT_QUOTA if self.profile.has_quota else None
        refused = self.store.create(app_key, bot, quota=quota)
        if refused == "duplicate":
            rejection = self.profile.refusal(
                "duplicate_create", f"userId: bot {bot['userId']} already exists"
            )
            if rejection is not None:
                raise rejection
        if refused == "quota":
            rejection = self.profile.refusal(
                "bot_quota", f"bot quota reached: an app can have at most {BOT_QUOTA} bots"
            )
            assert rejection is not None  # no quota without a refusal (has_quota)
            raise rejection
        return {}

    def update(self, app_key: str, body: Any) -> dict[str, Any]:
        semantics = self.profile.update_semantics
        if semantics == "replace":
            bot = parse_bot(body, self.profile.bot_rules)
            if not self.store.replace(app_key, bot):
                raise self._missing(bot["userId"])
            return {}
        user_id = parse_user_id_body(body)
        stored = self.store.get(app_key, user_id)
        if stored is None:
            raise self._missing(user_id)
        if semantics == "patch":
            body = patched(stored.body, body)
        else:
            left_out = omitted_fields(stored.body, body)
            message = f"{left_out[0]}: left out of the update" if left_out else ""
            rejection = self.profile.refusal("update_omitted_fields", message)
            if left_out and rejection is not None:
                raise rejection
        if not self.store.replace(app_key, parse_bot(body, self.profile.bot_rules)):
            raise self._missing(user_id)
        return {}

    def delete(self, app_key: str, body: Any) -> dict[str, Any]:
        user_id = parse_user_id_body(body)
        if not self.store.delete(app_key, user_id):
            rejection = self.profile.refusal("delete_absent", f"userId: bot {user_id} not found")
            if rejection is not None:
                raise rejection
        return {}

    def integration_delete(self, app_key: str, body: Any) -> dict[str, Any]:
        """Remove the bot's integrations of one ``type`` (the bot may be left without any)."""
        user_id = parse_user_id_body(body)
        kind = body.get("type")
        if kind not in INTEGRATION_TYPES:
            raise parameter_error("type", f"must be one of {', '.join(INTEGRATION_TYPES)}")
        stored = self.store.get(app_key, user_id)
        if stored is None:
            raise self._missing(user_id)
        kept = [item for item in stored.body["integrations"] if item["type"] != kind]
        if len(kept) == len(stored.body["integrations"]):
            raise Rejection(
                codes.STATUS_NOT_FOUND,
                codes.CODE_NOT_FOUND,
                f"type: bot {user_id} has no integration of type {kind}",
                invented=True,
            )
        if not self.store.replace(app_key, {**stored.body, "integrations": kept}):
            raise self._missing(user_id)
        return {}

    def get(self, app_key: str, body: Any) -> dict[str, Any]:
        bots = []
        for index, user_id in enumerate(parse_user_ids(body)):
            found = self.store.get(app_key, user_id)
            if found is not None:
                bots.append(self._view(found, integrations=True))
                continue
            rejection = self.profile.refusal(
                "get_unknown_id", f"userIds[{index}]: bot {user_id} not found"
            )
            if rejection is not None:
                raise rejection
        return {"bots": bots, "total": len(bots), "hasNext": False}

    def query(self, app_key: str, body: Any) -> dict[str, Any]:
        request = parse_query(body)
        offset = (request.page - 1) * request.page_size
        total, page = self.store.page(app_key, offset=offset, limit=request.page_size)
        bots = [self._view(bot, integrations=request.include_integration) for bot in page]
        return {"bots": bots, "total": total, "hasNext": offset + len(page) < total}

    def _missing(self, user_id: str) -> Rejection:
        """A missing bot on update or integration delete: what a delete of an absent bot
        answers when that is an error, else the invented 404 / 1404."""
        message = f"userId: bot {user_id} not found"
        return self.profile.refusal("delete_absent", message) or Rejection(
            codes.STATUS_NOT_FOUND, codes.CODE_NOT_FOUND, message, invented=True
        )

    def _view(self, bot: StoredBot, *, integrations: bool) -> dict[str, Any]:
        view = bot.as_dict()
        if not integrations:
            view.pop("integrations", None)
        elif self.profile.api_keys != "plain":
            view["integrations"] = [self._hidden(item) for item in view["integrations"]]
        return view

    def _hidden(self, integration: dict[str, Any]) -> dict[str, Any]:
        if "auth" not in integration:
            return integration
        if self.profile.api_keys == "absent":
            return {key: value for key, value in integration.items() if key != "auth"}
        return {**integration, "auth": {"apiKey": MASKED_API_KEY}}


def patched(stored: dict[str, Any], body: Any) -> Any:
    """``body`` laid over the ``stored`` bot: fields left out kept, metadata merged key by
    key, integrations merged by type (one left out is kept; ``auth`` merged), lists
    replaced when sent. A body that is not an object is returned for the checks to refuse."""
    if not isinstance(body, dict):
        return body
    merged = {**stored, **body}
    if isinstance(body.get("metadata"), dict):
        merged["metadata"] = {**stored.get("metadata", {}), **body["metadata"]}
    sent = body.get("integrations")
    if isinstance(sent, list):
        by_type = {item["type"]: item for item in stored["integrations"]}
        for item in sent:
            old = by_type.get(item.get("type")) if isinstance(item, dict) else None
            if old is None or not isinstance(item, dict):
                continue
            new = {**old, **item}
            if isinstance(old.get("auth"), dict) and isinstance(item.get("auth"), dict):
                new["auth"] = {**old["auth"], **item["auth"]}
            by_type[item["type"]] = new
        fresh = [
            item for item in sent if not isinstance(item, dict) or item.get("type") not in by_type
        ]
        merged["integrations"] = [*by_type.values(), *fresh]
    return merged


def omitted_fields(stored: dict[str, Any], body: Any) -> list[str]:
    """The fields the ``stored`` bot has that ``body`` leaves out (paths as the emulator's
    messages name fields), for a profile that refuses such an update."""
    if not isinstance(body, dict):
        return []
    left_out = [name for name in _KEPT_BY_PATCH if name in stored and body.get(name) is None]
    sent = body.get("integrations")
    by_type = (
        {item.get("type"): item for item in sent if isinstance(item, dict)}
        if isinstance(sent, list)
        else {}
    )
    for index, item in enumerate(stored.get("integrations", [])):
        given = by_type.get(item["type"])
        if given is None:
            left_out.append(f"integrations[{index}] ({item['type']})")
            continue
        left_out += [
            f"integrations[{index}].{name}"
            for name in _INTEGRATION_OPTIONAL
            if name in item and given.get(name) is None
        ]
    return left_out
