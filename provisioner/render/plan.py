"""Plan renderers: text and json from ``Plan.document``, and the pieces every plan renderer
shares (summary, field lines, change titles); markdown is :mod:`provisioner.render.markdown`.

Pure: a list of plan documents in, a string out. Secrets never appear: canonical values hold
``{"sensitive": fingerprint}`` markers, shown as ``(sensitive)`` / ``(sensitive, changed)`` /
``(sensitive, reference renamed, value unchanged)`` (the json format keeps the fingerprints,
which are not secrets). Colour is a flag the CLI sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from provisioner.plan.document import (
    COUNT_KEYS,
    ChangeDoc,
    CountKey,
    CountsDoc,
    DriftDoc,
    FieldDoc,
    PlanDataDoc,
    PlanDoc,
    PlanStateDoc,
    ReplacementDoc,
    zero_counts,
)
from provisioner.render.safe import json_terminal_safe, terminal_safe
from provisioner.render.texts import DEFAULT_LANG, Lang, join, tr
from provisioner.secrets import MASK, is_sensitive_value

MASK_CHANGED = "(sensitive, changed)"
MASK_RENAMED = "(sensitive, reference renamed, value unchanged)"
"""A sensitive field whose ``${NAME}`` reference changed while its value did not."""

SYMBOLS = {"delete": "-", "create": "+", "adopt": "<=", "update": "~", "replace": "-/+"}
VERBS = {"delete": "delete", "create": "create", "adopt": "adopt", "update": "update"}
_COLORS = {
    "-": "31",
    "+": "32",
    "~": "33",
    "<=": "36",
    "-/+": "33",
    "!": "35",
    "blocked": "1;31",
}
_SUMMARY_ORDER: tuple[CountKey, ...] = ("replace", "delete", "create", "adopt", "update")
_SUMMARY_EXTRA: tuple[CountKey, ...] = ("drift", "unmanaged")
DIFY_ONLY_FIELDS = ("stream", "handleResponse")
"""Integration fields that mean something only for Dify types: not listed for a webhook
integration when they hold the API default (true)."""


# --- shared helpers ----------------------------------------------------------------------


def show(value: Any) -> str:
    """A value for humans: JSON literal, with sensitive markers masked."""
    if is_sensitive_value(value):
        return MASK
    return json_terminal_safe(json.dumps(_masked(value), ensure_ascii=False, sort_keys=True))


def _masked(value: Any) -> Any:
    if is_sensitive_value(value):
        return MASK
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def summary(doc: PlanDataDoc, lang: Lang = DEFAULT_LANG) -> str:
    """``1 to replace, 1 to delete, 2 to create, 1 to update; 1 drifted, 1 unmanaged`` or
    ``no changes``. A replacement is counted once, not also as a delete and a create."""
    return counts_summary(doc["counts"], lang)


def counts_summary(counts: CountsDoc, lang: Lang = DEFAULT_LANG) -> str:
    """:func:`summary` of counts (one plan's, or :func:`total_counts` of several)."""
    shown = counts.copy()
    paired = counts.get("replace", 0)
    shown["delete"] = counts.get("delete", 0) - paired
    shown["create"] = counts.get("create", 0) - paired
    parts = [tr(lang, f"count.{key}", n=shown[key]) for key in _SUMMARY_ORDER if shown.get(key)]
    extra = [tr(lang, f"count.{key}", n=shown[key]) for key in _SUMMARY_EXTRA if shown.get(key)]
    changes = join(lang, parts) if parts else tr(lang, "count.none")
    if not extra:
        return changes
    return tr(lang, "count.with_extra", changes=changes, extra=join(lang, extra))


def total_counts(docs: Iterable[PlanDataDoc]) -> CountsDoc:
    """The counts of several plans added up."""
    totals = zero_counts()
    for doc in docs:
        for key in COUNT_KEYS:
            totals[key] += doc["counts"].get(key, 0)
    return totals


def sensitive_change(field: FieldDoc) -> str:
    """How a sensitive field present before and after is shown: changed, or only renamed."""
    return MASK_RENAMED if field.get("reference_renamed") else MASK_CHANGED


def field_lines(field: FieldDoc) -> list[tuple[str, str]]:
    """One field diff as ``(symbol, text)`` lines; added/removed mappings are expanded."""
    path, old, new = field["path"], field["old"], field["new"]
    if field.get("sensitive"):
        if old is not None and new is not None:
            return [("~", f"{path}: {sensitive_change(field)}")]
        return [("+" if old is None else "-", f"{path}: {MASK}")]
    if old is None and new is not None:
        return [("+", f"{leaf}: {value}") for leaf, value in leaves(path, new)]
    if new is None and old is not None:
        return [("-", f"{leaf}: {value}") for leaf, value in leaves(path, old)]
    return [("~", f"{path}: {show(old)} -> {show(new)}")]


def leaves(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """``(path, shown value)`` for every leaf of ``value``; integrations keyed by type."""
    if isinstance(value, dict) and not is_sensitive_value(value) and value:
        for key in sorted(value):
            yield from leaves(_join(prefix, key), value[key])
    elif isinstance(value, list) and prefix.endswith("integrations"):
        for item in sorted(value, key=lambda item: str(item.get("type"))):
            rest = {key: val for key, val in item.items() if key != "type"}
            yield from leaves(f"{prefix}[{item.get('type')}]", rest)
    else:
        yield prefix, show(value)


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    if key.replace("_", "a").replace("-", "a").isalnum() and not key[:1].isdigit():
        return f"{prefix}.{key}"
    return f"{prefix}[{json.dumps(key, ensure_ascii=False)}]"


BOT_FIELD_ORDER = ("userId", "name", "type", "profileUrl", "metadata", "integrations")
"""The order of RongCloud's create-bot table, used to list a whole bot."""


def spec_leaves(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """:func:`leaves` of a whole canonical spec in :data:`BOT_FIELD_ORDER`, without the
    Dify-only fields of a webhook integration that hold their default (true)."""
    hidden = {
        f"integrations[{item.get('type')}].{name}"
        for item in spec.get("integrations") or []
        if isinstance(item, dict) and item.get("type") == "webhook"
        for name in DIFY_ONLY_FIELDS
        if item.get(name, True) is True
    }
    rank = {key: index for index, key in enumerate(BOT_FIELD_ORDER)}
    for key in sorted(spec, key=lambda key: (rank.get(key, len(rank)), key)):
        for path, value in leaves(_join("", key), spec[key]):
            if path not in hidden:
                yield path, value


def change_lines(change: ChangeDoc) -> list[tuple[str, str]]:
    """The detail lines of one change: every field and ``protect`` for a create, the recorded
    fields that will be lost for a delete, the diff otherwise (a replacement: its diff)."""
    replacement = change.get("replacement")
    if replacement is not None:
        return [line for field in replacement["fields"] for line in field_lines(field)]
    if change["action"] == "create":
        lines = [("+", f"{path}: {value}") for path, value in spec_leaves(change["after"] or {})]
        return [*lines, ("+", f"protect: {show(bool(change.get('protect')))}")]
    if change["action"] == "delete":
        return [("-", f"{path}: {value}") for path, value in spec_leaves(change["before"] or {})]
    return [line for field in change["fields"] for line in field_lines(field)]


def change_title(change: ChangeDoc) -> str:
    source = f" ({change['source']})" if change.get("source") else ""
    protect = " [protected]" if change.get("protect") and change["action"] == "delete" else ""
    replacement = change.get("replacement")
    if replacement is not None:
        return f"replace {replacement['old']} -> {replacement['new']}{source}{protect}"
    return f"{VERBS[change['action']]} {change['user_id']}{source}{protect}"


def replacement_warning(replacement: ReplacementDoc, lang: Lang = DEFAULT_LANG) -> str:
    """What a replacement means for the bot, in one sentence."""
    return tr(lang, "plan.replacement", old=replacement["old"], new=replacement["new"])


def shown_changes(changes: Sequence[ChangeDoc]) -> list[ChangeDoc]:
    """The changes as renderers list them: a replacement once, as its delete (with the
    create's source), in the delete's place; its create is left out."""
    creates = {
        change["user_id"]: change
        for change in changes
        if change["action"] == "create" and change.get("replacement")
    }
    shown: list[ChangeDoc] = []
    for change in changes:
        replacement = change.get("replacement")
        if replacement is None:
            shown.append(change)
        elif change["action"] == "delete":
            create = creates.get(replacement["new"])
            shown.append({**change, "source": create.get("source") if create else None})
    return shown


def change_symbol(change: ChangeDoc) -> str:
    return SYMBOLS["replace" if change.get("replacement") else change["action"]]


def state_note(state: PlanStateDoc, lang: Lang = DEFAULT_LANG) -> str:
    if state.get("lineage") is None:
        return tr(lang, "plan.no_state")
    return tr(lang, "plan.state", serial=state["serial"], lineage=state["lineage"])


def unchecked_note(names: Sequence[str], lang: Lang = DEFAULT_LANG) -> str:
    return tr(lang, "plan.unchecked", names=", ".join(names))


# --- text --------------------------------------------------------------------------------


def render_text(docs: Sequence[PlanDoc], *, color: bool = False) -> str:
    """The human plan for a terminal, one block per app in the given order."""
    return "\n".join(app_text(doc, color=color) for doc in docs)


def app_text(doc: PlanDoc, *, color: bool = False) -> str:
    """One app's text plan: heading, changes, drift, unmanaged bots, blocking reasons."""
    lines = [
        terminal_safe(f"Plan for app {doc['app']}: {summary(doc)}"),
        f"Plan id: {doc['id']} ({state_note(doc['state'])})",
    ]
    if doc.get("unchecked"):
        lines.append(terminal_safe(unchecked_note(doc["unchecked"])))
    lines += _text_changes(doc["changes"], color)
    lines += _text_drift(doc["drift"], color)
    if doc["unmanaged"]:
        lines += [
            "",
            "Unmanaged (on the server, never recorded, not declared; left alone): "
            + terminal_safe(", ".join(doc["unmanaged"])),
        ]
    if doc["blocked"]:
        heading = "Blocked by a safety rule (nothing will be applied):"
        lines += ["", _paint(heading, "blocked", color)]
        lines += [f"  - {terminal_safe(reason)}" for reason in doc["blocked"]]
    return "\n".join(lines) + "\n"


def _paint(text: str, key: str, color: bool) -> str:
    return f"\x1b[{_COLORS[key]}m{text}\x1b[0m" if color else text


def _details(lines: Iterable[tuple[str, str]], color: bool) -> list[str]:
    """Detail lines ``(symbol, text)`` under a change or a drifted bot."""
    return [f"      {_paint(sym, sym, color)} {terminal_safe(text)}" for sym, text in lines]


def _text_changes(changes: Sequence[ChangeDoc], color: bool) -> list[str]:
    lines = [""] if changes else []
    for change in shown_changes(changes):
        symbol = change_symbol(change)
        lines.append(f"  {_paint(symbol, symbol, color)} {terminal_safe(change_title(change))}")
        replacement = change.get("replacement")
        if replacement is not None:
            warning = terminal_safe(replacement_warning(replacement))
            lines.append(f"      {_paint('!', '!', color)} warning: {warning}")
        lines += _details(change_lines(change), color)
    return lines


def _text_drift(drift: Sequence[DriftDoc], color: bool) -> list[str]:
    if not drift:
        return []
    lines = ["", "Drift (changed on the server outside git; recorded -> live):"]
    mark = _paint("!", "!", color)
    for item in drift:
        who = terminal_safe(item["user_id"])
        if item["kind"] == "missing":
            lines.append(f"  {mark} {who}: missing on the server")
            continue
        lines.append(f"  {mark} {who}: changed on the server")
        for field in item["fields"]:
            lines += _details(field_lines(field), color)
    return lines


# --- json --------------------------------------------------------------------------------


def render_json(docs: Sequence[PlanDoc], *, format_version: int = 1) -> str:
    """``{"format_version": 1, "plans": [...]}``, sorted keys, indent 2, trailing newline."""
    document = {"format_version": format_version, "plans": list(docs)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
