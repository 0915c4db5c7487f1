"""The plan core: desired × recorded × live → Plan. Pure: no clock, env, file or network I/O.

CONTRACT (shared by plan, render and apply; keep these names and shapes):

- ``FieldDiff(path, old, new, sensitive)``: one changed field; ``path`` like
  ``integrations[dify_chatflow].callbackUrl``; for sensitive fields ``old``/``new`` hold
  fingerprints, never values, and renderers print ``(sensitive)``/``(sensitive, changed)``.
- ``Change(action, user_id, source, before, after, fields, protect, replacement)``:
  ``action`` in ``delete`` | ``create`` | ``adopt`` | ``update``; ``before`` is the recorded
  canonical spec (None for create/adopt), ``after`` the desired canonical spec to record after
  success (None for delete). Canonical specs hold secrets only as fingerprints.
  ``replacement`` pairs the delete of X with the create of Y when Y's manifest file is the one
  X was recorded from (its ``userId`` was changed): ``Replacement(old, new, fields)`` on both
  changes, ``fields`` the diff X's recorded spec -> Y's; apply still deletes, then creates.
- ``Drift(user_id, kind, fields)``: what changed on the server outside git (``changed`` or
  ``missing``), from a refresh.
- ``Plan``: ``app``, sorted ``changes`` (deletes, creates/adopts, updates; by user_id within),
  ``drift``, ``unmanaged`` (on the server, never recorded, not declared: reported, never
  deleted), ``blocked`` (reasons a safety rule blocks it), ``lineage``/``serial`` of the
  state it was made against (``last_run``/``last_plan``: the CI run and the plan id of its
  last write, when known); ``.data`` (canonical JSON view, ``format_version``), ``.id``
  (sha256 of canonical ``data`` plus lineage and serial), ``.counts``, ``.is_empty``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

from provisioner.errors import PlanError, UnsafePlanError
from provisioner.models import Bot, DesiredApp
from provisioner.plan.canonical import (
    DESCEND,
    UNCHECKED_FINGERPRINT,
    UNKNOWN_FINGERPRINT,
    canonical_live,
    canonical_spec,
    walk_aligned,
    with_templates,
)
from provisioner.rongcloud.models import BotPayload
from provisioner.secrets import SENSITIVE_KEY, TEMPLATE_KEY, is_sensitive_value
from provisioner.state.model import RecordedApp, RecordedBot

Action = Literal["delete", "create", "adopt", "update"]
ACTION_ORDER: dict[str, int] = {"delete": 0, "create": 1, "adopt": 1, "update": 2}


@dataclass(frozen=True)
class FieldDiff:
    path: str
    old: Any
    new: Any
    sensitive: bool = False


@dataclass(frozen=True)
class Replacement:
    """A bot whose ``userId`` changed in its manifest: the delete of ``old`` and the create of
    ``new`` are one replacement; ``fields`` are the differences old (recorded) -> new."""

    old: str
    new: str
    fields: tuple[FieldDiff, ...] = ()


@dataclass(frozen=True)
class Change:
    action: Action
    user_id: str
    source: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[FieldDiff, ...] = ()
    protect: bool = False
    replacement: Replacement | None = None

    @property
    def sort_key(self) -> tuple[int, str]:
        return ACTION_ORDER[self.action], self.user_id


@dataclass(frozen=True)
class Drift:
    user_id: str
    kind: Literal["changed", "missing"]
    fields: tuple[FieldDiff, ...] = ()


# --- Plan and make_plan ---------------------------------------------------------------------

FORMAT_VERSION = 1
"""Version of the plan JSON document (``Plan.data``/``Plan.document``)."""

_COUNTED = ("create", "adopt", "update", "delete")


def source_file(source: str | None) -> str | None:
    """The file name of a manifest as shown (``bots/demo/assistant.yaml`` -> ``assistant.yaml``):
    what the state records as a bot's ``source``, whatever path named the app folder."""
    if not source:
        return None
    return source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Plan:
    """What an apply would do to one app, and why it might be blocked. A value."""

    app: str
    changes: tuple[Change, ...]
    drift: tuple[Drift, ...]
    unmanaged: tuple[str, ...]
    blocked: tuple[str, ...]
    lineage: str
    serial: int
    last_run: str | None = None
    """The CI run that last wrote the state planned against (None: unknown or not CI)."""
    last_plan: str | None = None
    """The id of the plan whose apply last wrote that state (None: not recorded)."""
    unchecked: tuple[str, ...] = ()
    """Variables whose value this run did not have (a plan without secrets): each reference
    to one was taken as unchanged where it is, and as new where it is new."""

    def __repr__(self) -> str:
        counts = ", ".join(f"{key}={value}" for key, value in self.counts.items() if value)
        return f"<Plan {self.app} {counts or 'no changes'}{' BLOCKED' if self.blocked else ''}>"

    @cached_property
    def counts(self) -> dict[str, int]:
        """Number of changes per action, ``replace`` (delete + create pairs, counted in both
        too), plus ``drift`` and ``unmanaged``."""
        counts = dict.fromkeys(_COUNTED, 0)
        for change in self.changes:
            counts[change.action] += 1
        counts["replace"] = sum(
            1 for change in self.changes if change.action == "create" and change.replacement
        )
        counts["drift"] = len(self.drift)
        counts["unmanaged"] = len(self.unmanaged)
        return counts

    @property
    def is_empty(self) -> bool:
        """True when applying would make no call."""
        return not self.changes

    @property
    def has_changes(self) -> bool:
        """True when there are changes or drift (``--detailed-exitcode`` exits 2)."""
        return bool(self.changes or self.drift)

    @property
    def is_blocked(self) -> bool:
        """True when a safety rule blocks the plan (exit 3); reasons in ``blocked``."""
        return bool(self.blocked)

    @cached_property
    def data(self) -> dict[str, Any]:
        """The canonical JSON view (``format_version`` 1); holds fingerprints, never secrets."""
        return {
            "format_version": FORMAT_VERSION,
            "app": self.app,
            "state": {
                "lineage": None if self.is_new_state else self.lineage,
                "serial": self.serial,
                "last_run": self.last_run,
                "last_plan": self.last_plan,
            },
            "counts": self.counts,
            "has_changes": self.has_changes,
            "blocked": list(self.blocked),
            "changes": [_change_data(change) for change in self.changes],
            "drift": [_drift_data(drift) for drift in self.drift],
            "unmanaged": list(self.unmanaged),
            "unchecked": list(self.unchecked),
        }

    @property
    def is_new_state(self) -> bool:
        """True when the plan was made against a state never written (serial 0): its lineage
        and salt are not fixed yet, so a second read gives new ones."""
        return self.serial == 0

    @cached_property
    def id(self) -> str:
        """SHA-256 (hex) of the canonical plan JSON plus the state lineage and serial: see
        :func:`plan_id`."""
        return plan_id(self.data)

    @property
    def document(self) -> dict[str, Any]:
        """``data`` plus its ``id``: what ``plan --format json`` and ``--out`` write."""
        return {"id": self.id, **self.data}

    def raise_if_blocked(self) -> None:
        """UnsafePlanError (exit 3) listing every reason when a safety rule blocks the plan."""
        if self.blocked:
            raise UnsafePlanError(
                f"the plan for app {self.app} is blocked: " + "; ".join(self.blocked),
                hint="see the plan output for the rule and how to lift it",
            )


def plan_id(data: Mapping[str, Any]) -> str:
    """The id of a plan from its JSON view (``Plan.data``, or ``Plan.document`` whose ``id``
    is ignored): SHA-256 (hex) of what an apply of it would do, plus the state's lineage and
    serial. A plan file whose content was edited no longer matches its id.

    What an apply would do: the changes (without ``source``, the manifest file names), the
    drift it repairs, the safety rules that block it. Left out: counts (they follow), the
    unmanaged bots (never touched) and the variables not checked in this run. Secret
    fingerprints are left out too — each is ``unchanged`` (the same reference and value as
    before) or ``new`` — so a plan made without secrets (a pull request) and the same plan
    made with them (the apply after merge) have the same id, while a secret rotated outside
    git makes a change of its own, and so another id. A never-written state (serial 0) has a
    random lineage: it is left out then.
    """
    state = data["state"]
    view = {
        "format_version": data["format_version"],
        "app": data["app"],
        "serial": state["serial"],
        "lineage": state["lineage"] or "",
        "blocked": data["blocked"],
        "changes": [_change_view(change) for change in data["changes"]],
        "drift": [_without_fingerprints(drift) for drift in data["drift"]],
    }
    text = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _change_view(change: Mapping[str, Any]) -> dict[str, Any]:
    """A change as the plan id sees it: no source, secrets as unchanged/new tokens."""
    before = change.get("before")
    fields = [
        {
            **field,
            "old": _without_fingerprints(field["old"]),
            "new": _tokens(field["new"], field["old"]),
        }
        for field in change["fields"]
    ]
    replacement = change.get("replacement")
    return {
        "action": change["action"],
        "user_id": change["user_id"],
        "protect": change["protect"],
        "before": _without_fingerprints(before),
        "after": _tokens(change.get("after"), before),
        "fields": fields,
        "replacement": {"old": replacement["old"], "new": replacement["new"]}
        if replacement
        else None,
    }


def _tokens(value: Any, base: Any) -> Any:
    """``value`` with each sensitive marker as ``unchanged`` (``base`` holds the same
    reference with the same value at that place) or ``new``."""

    def visit(node: Any, base_node: Any, path: tuple[str, ...]) -> Any:
        if not is_sensitive_value(node):
            return DESCEND
        same = (
            is_sensitive_value(base_node)
            and base_node.get(TEMPLATE_KEY) == node.get(TEMPLATE_KEY)
            and base_node[SENSITIVE_KEY] == node[SENSITIVE_KEY]
            and node[SENSITIVE_KEY] not in (UNCHECKED_FINGERPRINT, UNKNOWN_FINGERPRINT)
        )
        token = "unchanged" if same else "new"
        return {SENSITIVE_KEY: token, TEMPLATE_KEY: node.get(TEMPLATE_KEY)}

    return walk_aligned(value, base, visit)


def make_plan(
    desired: DesiredApp,
    recorded: RecordedApp,
    env: Mapping[str, str],
    live: Sequence[BotPayload] | None = None,
    *,
    allow_empty: bool = False,
    check_secrets: bool = True,
) -> Plan:
    """Compare what git declares, what was recorded and (with a refresh) what the server has.

    Pure. ``live`` is None without a refresh (no drift, no adopt, no unmanaged). A variable
    that is unset or empty raises ConfigError naming it — unless ``check_secrets`` is False
    (a plan without secrets): then it is listed in ``Plan.unchecked`` and each reference to
    it counts as unchanged where the state records the same reference. The plan is always
    made; safety rules only mark it ``blocked``.
    """
    if desired.name != recorded.app:
        raise PlanError(
            f"the recorded state belongs to app {recorded.app}, not to app {desired.name}",
            hint="give each app its own state.path in its app.yaml",
        )
    live_by_id = {bot.userId: bot for bot in live} if live is not None else None
    unchecked: set[str] | None = None if check_secrets else set()
    changes: list[Change] = []
    drift: list[Drift] = []
    for bot in desired.bots:
        source = desired.sources.get(bot.userId)
        change, found = _planned_bot(bot, source, recorded, env, live_by_id, unchecked)
        changes.extend([change] if change is not None else [])
        drift.extend([found] if found is not None else [])
    for user_id, rec in recorded.bots.items():
        if any(bot.userId == user_id for bot in desired.bots):
            continue
        found = _drift_of(user_id, rec, live_by_id, recorded.salt)
        drift.extend([found] if found is not None else [])
        changes.append(Change("delete", user_id, None, rec.spec, None, protect=rec.protect))
    declared = {bot.userId for bot in desired.bots}
    unmanaged = sorted(set(live_by_id or ()) - set(recorded.bots) - declared)
    changes = pair_replacements(changes, recorded)
    return Plan(
        app=desired.name,
        changes=tuple(sorted(changes, key=lambda change: change.sort_key)),
        drift=tuple(sorted(drift, key=lambda item: item.user_id)),
        unmanaged=tuple(unmanaged),
        blocked=tuple(_blocked_reasons(desired.name, recorded, changes, allow_empty)),
        lineage=recorded.lineage,
        serial=recorded.serial,
        last_run=recorded.last_run,
        last_plan=recorded.last_plan,
        unchecked=tuple(sorted(unchecked or ())),
    )


def _planned_bot(
    bot: Bot,
    source: str | None,
    recorded: RecordedApp,
    env: Mapping[str, str],
    live_by_id: Mapping[str, BotPayload] | None,
    unchecked: set[str] | None,
) -> tuple[Change | None, Drift | None]:
    """The change for one declared bot (None when it is as recorded), and its drift."""
    salt = recorded.salt
    rec = recorded.bots.get(bot.userId)
    spec = rec.spec if rec is not None else None
    after = canonical_spec(bot, env, salt, recorded=spec, unchecked=unchecked)
    if rec is not None:
        upgraded = replace(rec, spec=with_templates(rec.spec, after))
        change, found = _planned_recorded(
            bot.userId, upgraded, after, bot.protect, live_by_id, salt
        )
        return (replace(change, source=source) if change is not None else None), found
    if live_by_id is not None and bot.userId in live_by_id:
        fields = diff_specs(canonical_live(live_by_id[bot.userId], salt, after), after)
        return Change("adopt", bot.userId, source, None, after, fields, protect=bot.protect), None
    return Change("create", bot.userId, source, None, after, protect=bot.protect), None


def _planned_recorded(
    user_id: str,
    rec: RecordedBot,
    after: dict[str, Any],
    protect: bool,
    live_by_id: Mapping[str, BotPayload] | None,
    salt: str,
) -> tuple[Change | None, Drift | None]:
    """The change for a recorded, still declared bot, and its drift (with a refresh).

    The update's fields are what the call changes on the server (live -> desired when the
    server drifted, else recorded -> desired). When the server already matches the manifest
    but the record does not (changed by hand, or a state write was lost), the update shows
    recorded -> desired, so applying it brings the record up to date.
    """
    found = _drift_of(user_id, rec, live_by_id, salt) if live_by_id is not None else None
    if found is not None and found.kind == "missing":
        return Change("create", user_id, None, None, after, protect=protect), found
    fields: tuple[FieldDiff, ...] = ()
    if found is not None and live_by_id is not None:
        fields = diff_specs(canonical_live(live_by_id[user_id], salt, rec.spec), after)
    if not fields:
        fields = diff_specs(rec.spec, after)
    if rec.protect != protect:
        fields = (*fields, FieldDiff("protect", rec.protect, protect))
    if not fields:
        return None, found
    return Change("update", user_id, None, rec.spec, after, fields, protect=protect), found


def _drift_of(
    user_id: str, rec: RecordedBot, live_by_id: Mapping[str, BotPayload] | None, salt: str
) -> Drift | None:
    if live_by_id is None:
        return None
    bot = live_by_id.get(user_id)
    if bot is None:
        return Drift(user_id, "missing")
    fields = diff_specs(rec.spec, canonical_live(bot, salt, rec.spec))
    return Drift(user_id, "changed", fields) if fields else None


def pair_replacements(changes: Sequence[Change], recorded: RecordedApp) -> list[Change]:
    """``changes`` with each delete of X and create of Y paired as a :class:`Replacement`
    when Y is not recorded and its manifest file is the one X was recorded from (``source``).
    Both changes stay, in their places; only their ``replacement`` is set."""
    creates_by_file: dict[str, Change] = {}
    for change in changes:
        name = source_file(change.source)
        if change.action == "create" and name and change.user_id not in recorded.bots:
            creates_by_file.setdefault(name, change)
    pairs: dict[str, Replacement] = {}
    for change in changes:
        rec = recorded.bots.get(change.user_id)
        if change.action != "delete" or rec is None or rec.source is None:
            continue
        create = creates_by_file.pop(rec.source, None)
        if create is not None and create.after is not None:
            fields = diff_specs(rec.spec, create.after)
            if rec.protect != create.protect:
                fields = (*fields, FieldDiff("protect", rec.protect, create.protect))
            pair = Replacement(change.user_id, create.user_id, fields)
            pairs[change.user_id] = pairs[create.user_id] = pair
    return [
        replace(change, replacement=pairs[change.user_id])
        if change.user_id in pairs and change.action in ("delete", "create")
        else change
        for change in changes
    ]


def _blocked_reasons(
    app: str, recorded: RecordedApp, changes: Sequence[Change], allow_empty: bool
) -> list[str]:
    deletes = [change for change in changes if change.action == "delete"]
    emptying = [change for change in deletes if change.replacement is None]
    reasons = [
        f"{change.user_id} is protected (protect: true in state); set protect: false in a"
        " separate apply before deleting it"
        for change in sorted(deletes, key=lambda change: change.user_id)
        if change.protect
    ]
    if recorded.bots and len(emptying) == len(recorded.bots) and not allow_empty:
        reasons.append(
            f"the plan deletes every managed bot of app {app} ({len(deletes)});"
            " pass --allow-empty if that is intended"
        )
    return reasons


# --- field-level diff ---------------------------------------------------------------------


def diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """Field-level differences between two canonical specs, sorted by path.

    DeepDiff finds the differences; each is converted at once into a FieldDiff with a readable
    path (``name``, ``metadata.version``, ``integrations[dify_chat].stream``). Lists
    (``objectNames``, ``events``) and sensitive markers count as one field each.
    """
    if old == new:
        return ()
    from deepdiff import DeepDiff

    left, right = _pruned(_keyed(old), _keyed(new), depth=3)
    found: dict[tuple[str | int, ...], FieldDiff] = {}
    for levels in DeepDiff(left, right, view="tree").values():
        for level in levels:
            prefix = _field_prefix(tuple(level.path(output_format="list")), left, right)
            for diff in _expand(prefix, left, right):
                found.setdefault(tuple(diff[0]), diff[1])
    return tuple(found[key] for key in sorted(found, key=_path_sort_key))


_MISSING: Any = None


def _keyed(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``integrations`` as a mapping keyed by type, so paths name the integration."""
    out = dict(spec)
    integrations = out.get("integrations")
    if isinstance(integrations, list):
        out["integrations"] = {
            str(item.get("type")): {key: value for key, value in item.items() if key != "type"}
            for item in integrations
            if isinstance(item, dict)
        }
    return out


def _pruned(left: Any, right: Any, *, depth: int) -> tuple[Any, Any]:
    """Both mappings cut down to the keys whose values differ (``depth`` levels down), so
    DeepDiff only walks what changed; paths stay the same."""
    if depth == 0 or not (isinstance(left, dict) and isinstance(right, dict)):
        return left, right
    out_left: dict[str, Any] = {}
    out_right: dict[str, Any] = {}
    for key in left.keys() | right.keys():
        if key in left and key in right:
            if left[key] == right[key]:
                continue
            out_left[key], out_right[key] = _pruned(left[key], right[key], depth=depth - 1)
        elif key in left:
            out_left[key] = left[key]
        else:
            out_right[key] = right[key]
    return out_left, out_right


def _lookup(tree: Any, path: Sequence[str | int]) -> tuple[bool, Any]:
    node = tree
    for key in path:
        in_dict = isinstance(node, dict) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not (in_dict or in_list):
            return False, _MISSING
        node = node[key]
    return True, node


def _field_prefix(path: tuple[Any, ...], left: Any, right: Any) -> tuple[str | int, ...]:
    """Cut a DeepDiff path at the first list index or sensitive marker: one field."""
    for end in range(len(path) + 1):
        prefix = path[:end]
        for tree in (left, right):
            present, value = _lookup(tree, prefix)
            if present and (isinstance(value, list) or is_sensitive_value(value)):
                return prefix
    return path


def _expand(
    path: tuple[str | int, ...], left: Any, right: Any
) -> list[tuple[tuple[str | int, ...], FieldDiff]]:
    """One FieldDiff per changed leaf under ``path`` (plain mappings are expanded)."""
    has_old, old = _lookup(left, path)
    has_new, new = _lookup(right, path)
    plain = (
        has_old
        and has_new
        and isinstance(old, dict)
        and isinstance(new, dict)
        and not is_sensitive_value(old)
        and not is_sensitive_value(new)
    )
    if plain:
        out: list[tuple[tuple[str | int, ...], FieldDiff]] = []
        for key in sorted(set(old) | set(new)):
            if old.get(key, _MISSING) != new.get(key, _MISSING) or (key in old) != (key in new):
                out.extend(_expand((*path, key), left, right))
        return out
    sensitive = is_sensitive_value(old) or is_sensitive_value(new)
    return [(path, FieldDiff(format_path(path), old, new, sensitive))]


def format_path(path: Sequence[str | int]) -> str:
    """``("integrations", "dify_chat", "stream")`` -> ``integrations[dify_chat].stream``."""
    text = ""
    for index, key in enumerate(path):
        if isinstance(key, int) or (index == 1 and path[0] == "integrations"):
            text += f"[{key}]"
        elif _PLAIN_KEY.fullmatch(str(key)):
            text += f".{key}" if text else str(key)
        else:
            text += f"[{json.dumps(str(key), ensure_ascii=False)}]"
    return text


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _path_sort_key(path: tuple[str | int, ...]) -> tuple[str, ...]:
    return tuple(str(key) for key in path)


def _without_fingerprints(value: Any) -> Any:
    """``value`` with each sensitive marker's fingerprint left out (its template kept)."""
    if is_sensitive_value(value):
        return {SENSITIVE_KEY: "*", TEMPLATE_KEY: value.get(TEMPLATE_KEY)}
    if isinstance(value, dict):
        return {key: _without_fingerprints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_fingerprints(item) for item in value]
    return value


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "user_id": change.user_id,
        "source": change.source,
        "protect": change.protect,
        "before": change.before,
        "after": change.after,
        "fields": [_field_data(field) for field in change.fields],
        "replacement": _replacement_data(change.replacement),
    }


def _replacement_data(replacement: Replacement | None) -> dict[str, Any] | None:
    if replacement is None:
        return None
    return {
        "old": replacement.old,
        "new": replacement.new,
        "fields": [_field_data(field) for field in replacement.fields],
    }


def _drift_data(drift: Drift) -> dict[str, Any]:
    return {
        "user_id": drift.user_id,
        "kind": drift.kind,
        "fields": [_field_data(field) for field in drift.fields],
    }


def _field_data(field: FieldDiff) -> dict[str, Any]:
    return {"path": field.path, "old": field.old, "new": field.new, "sensitive": field.sensitive}
