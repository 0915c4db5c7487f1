"""The plan's values: FieldDiff, Replacement, Change, Drift and Plan, their JSON views, and
the plan id. Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from provisioner.errors import UnsafePlanError
from provisioner.plan.canonical import (
    DESCEND,
    UNCHECKED_FINGERPRINT,
    UNKNOWN_FINGERPRINT,
    walk_aligned,
)
from provisioner.plan.document import (
    Action,
    ChangeDoc,
    CountsDoc,
    DriftDoc,
    DriftKind,
    FieldDoc,
    PlanDataDoc,
    PlanDoc,
    ReplacementDoc,
    zero_counts,
)
from provisioner.secrets import SENSITIVE_KEY, TEMPLATE_KEY, is_sensitive_value

ACTION_ORDER: dict[str, int] = {"delete": 0, "create": 1, "adopt": 1, "update": 2}

FORMAT_VERSION = 1
"""Version of the plan JSON document (``Plan.data``/``Plan.document``)."""


def same_secret(old: Any, new: Any) -> bool:
    """Both are sensitive markers with one fingerprint that this run could compare (not
    ``unchecked`` or ``unknown``): the same value, whatever their references."""
    return (
        is_sensitive_value(old)
        and is_sensitive_value(new)
        and old[SENSITIVE_KEY] == new[SENSITIVE_KEY]
        and new[SENSITIVE_KEY] not in (UNCHECKED_FINGERPRINT, UNKNOWN_FINGERPRINT)
    )


@dataclass(frozen=True)
class FieldDiff:
    path: str
    old: Any
    new: Any
    sensitive: bool = False

    @property
    def reference_renamed(self) -> bool:
        """True when the ``${NAME}`` reference changed (``${A}`` -> ``${B}``) and its value
        did not: both markers hold a template and the same comparable fingerprint."""
        return (
            same_secret(self.old, self.new)
            and TEMPLATE_KEY in self.old
            and TEMPLATE_KEY in self.new
            and self.old[TEMPLATE_KEY] != self.new[TEMPLATE_KEY]
        )

    @property
    def secret_rotated(self) -> bool:
        """True when the value behind an unchanged ``${NAME}`` reference changed (a key
        rotated in the environment): same template, another comparable fingerprint."""
        old, new = self.old, self.new
        return (
            is_sensitive_value(old)
            and is_sensitive_value(new)
            and TEMPLATE_KEY in old
            and old.get(TEMPLATE_KEY) == new.get(TEMPLATE_KEY)
            and old[SENSITIVE_KEY] != new[SENSITIVE_KEY]
            and new[SENSITIVE_KEY] not in (UNCHECKED_FINGERPRINT, UNKNOWN_FINGERPRINT)
        )


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
    digest: str | None = None
    """The digest of the desired spec (:func:`~provisioner.plan.canonical.bot_digest`) of a
    declared bot; None for a delete: what a review of this change records."""

    @property
    def sort_key(self) -> tuple[int, str]:
        return ACTION_ORDER[self.action], self.user_id


@dataclass(frozen=True)
class Drift:
    user_id: str
    kind: DriftKind
    fields: tuple[FieldDiff, ...] = ()


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
    def counts(self) -> CountsDoc:
        """Number of changes per action, ``replace`` (delete + create pairs, counted in both
        too), plus ``drift`` and ``unmanaged``."""
        counts = zero_counts()
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
    def data(self) -> PlanDataDoc:
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
    def document(self) -> PlanDoc:
        """``data`` plus its ``id``: what ``plan --format json`` and ``--out`` write."""
        return {"id": self.id, **self.data}

    def raise_if_blocked(self) -> None:
        """UnsafePlanError (exit 3) listing every reason when a safety rule blocks the plan."""
        if self.blocked:
            raise UnsafePlanError(
                f"the plan for app {self.app} is blocked: " + "; ".join(self.blocked),
                hint="see the plan output for the rule and how to lift it",
            )


def plan_id(data: PlanDataDoc) -> str:
    """The id of a plan from its JSON view (``Plan.data``, or ``Plan.document`` whose ``id``
    is ignored): SHA-256 (hex) of what an apply of it would do, plus the state's lineage and
    serial. A plan file whose content was edited no longer matches its id.

    What an apply would do: the changes (without ``source``, the manifest file names), the
    drift it repairs, the safety rules that block it. Left out: counts (they follow), the
    unmanaged bots (never touched) and the variables not checked in this run. Secret
    fingerprints are left out too — each is ``unchanged`` (the same reference and value as
    before) or ``new`` — so a plan made without secrets (a pull request) and the same plan
    made with them (the apply after merge) have the same id, while a secret rotated outside
    git makes a change of its own, and so another id. For the same reason a field's
    ``reference_renamed`` flag is left out (it needs the values). A never-written state
    (serial 0) has a random lineage: it is left out then.
    """
    state = data["state"]
    view = {
        "format_version": data["format_version"],
        "app": data["app"],
        "serial": state["serial"],
        "lineage": state["lineage"] or "",
        "blocked": data["blocked"],
        "changes": [_change_view(change) for change in data["changes"]],
        "drift": [_drift_view(drift) for drift in data["drift"]],
    }
    text = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _change_view(change: ChangeDoc) -> dict[str, object]:
    """A change as the plan id sees it: no source, secrets as unchanged/new tokens."""
    before = change.get("before")
    replacement = change.get("replacement")
    return {
        "action": change["action"],
        "user_id": change["user_id"],
        "protect": change["protect"],
        "before": _without_fingerprints(before),
        "after": _tokens(change.get("after"), before),
        "fields": [_field_view(field) for field in change["fields"]],
        "replacement": {"old": replacement["old"], "new": replacement["new"]}
        if replacement
        else None,
    }


def _field_view(field: FieldDoc) -> dict[str, object]:
    return {
        **_unflagged(field),
        "old": _without_fingerprints(field["old"]),
        "new": _tokens(field["new"], field["old"]),
    }


def _drift_view(drift: DriftDoc) -> Any:
    fields = [_unflagged(field) for field in drift["fields"]]
    return _without_fingerprints({**drift, "fields": fields})


def _unflagged(field: FieldDoc) -> dict[str, object]:
    """``field`` without its ``reference_renamed`` flag (it needs the values)."""
    return {key: value for key, value in field.items() if key != "reference_renamed"}


def _tokens(value: Any, base: Any) -> Any:
    """``value`` with each sensitive marker as ``unchanged`` (``base`` holds the same
    reference with the same value at that place) or ``new``."""

    def visit(node: Any, base_node: Any, path: tuple[str, ...]) -> Any:
        if not is_sensitive_value(node):
            return DESCEND
        same = same_secret(base_node, node) and base_node.get(TEMPLATE_KEY) == node.get(
            TEMPLATE_KEY
        )
        token = "unchanged" if same else "new"
        return {SENSITIVE_KEY: token, TEMPLATE_KEY: node.get(TEMPLATE_KEY)}

    return walk_aligned(value, base, visit)


def _without_fingerprints(value: Any) -> Any:
    """``value`` with each sensitive marker's fingerprint left out (its template kept)."""
    if is_sensitive_value(value):
        return {SENSITIVE_KEY: "*", TEMPLATE_KEY: value.get(TEMPLATE_KEY)}
    if isinstance(value, dict):
        return {key: _without_fingerprints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_fingerprints(item) for item in value]
    return value


def _change_data(change: Change) -> ChangeDoc:
    return {
        "action": change.action,
        "user_id": change.user_id,
        "source": change.source,
        "protect": change.protect,
        "before": change.before,
        "after": change.after,
        "fields": [_field_data(field) for field in change.fields],
        "replacement": _replacement_data(change.replacement),
        "digest": change.digest,
    }


def _replacement_data(replacement: Replacement | None) -> ReplacementDoc | None:
    if replacement is None:
        return None
    return {
        "old": replacement.old,
        "new": replacement.new,
        "fields": [_field_data(field) for field in replacement.fields],
    }


def _drift_data(drift: Drift) -> DriftDoc:
    return {
        "user_id": drift.user_id,
        "kind": drift.kind,
        "fields": [_field_data(field) for field in drift.fields],
    }


def _field_data(field: FieldDiff) -> FieldDoc:
    data: FieldDoc = {
        "path": field.path,
        "old": field.old,
        "new": field.new,
        "sensitive": field.sensitive,
    }
    if field.reference_renamed:
        data["reference_renamed"] = True
    return data
