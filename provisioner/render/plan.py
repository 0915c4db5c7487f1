"""Plan renderers: text, json and markdown, all from ``Plan.document`` (rendered once).

Pure: a list of plan documents in, a string out. Secrets never appear: canonical values hold
``{"sensitive": fingerprint}`` markers, shown as ``(sensitive)`` / ``(sensitive, changed)``
(the json format keeps the fingerprints, which are not secrets). Colour is a flag the CLI sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from provisioner.render.safe import (
    json_terminal_safe,
    markdown_fence,
    markdown_text,
    terminal_safe,
)
from provisioner.render.safe import markdown_code as safe_code
from provisioner.secrets import is_sensitive_value

MARKDOWN_LIMIT = 60_000
"""Markdown is kept under this many characters (a GitHub comment holds 65,536)."""

MARKDOWN_MARKER = "<!-- provisioner:plan -->"
"""Hidden marker so a CI job can find and update its own pull-request comment."""

MASK = "(sensitive)"
MASK_CHANGED = "(sensitive, changed)"

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
_SUMMARY_ORDER = (
    ("replace", "to replace"),
    ("delete", "to delete"),
    ("create", "to create"),
    ("adopt", "to adopt"),
)
_SUMMARY_REST = (("update", "to update"),)
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


def summary(doc: Mapping[str, Any]) -> str:
    """``1 to replace, 1 to delete, 2 to create, 1 to update; 1 drifted, 1 unmanaged`` or
    ``no changes``. A replacement is counted once, not also as a delete and a create."""
    counts = dict(doc["counts"])
    paired = counts.get("replace", 0)
    counts["delete"] = counts.get("delete", 0) - paired
    counts["create"] = counts.get("create", 0) - paired
    parts = [
        f"{counts[key]} {label}"
        for key, label in (*_SUMMARY_ORDER, *_SUMMARY_REST)
        if counts.get(key)
    ]
    extra = [
        f"{counts[key]} {label}"
        for key, label in (("drift", "drifted"), ("unmanaged", "unmanaged"))
        if counts.get(key)
    ]
    text = ", ".join(parts) if parts else "no changes"
    return f"{text}; {', '.join(extra)}" if extra else text


def field_lines(field: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One field diff as ``(symbol, text)`` lines; added/removed mappings are expanded."""
    path, old, new = field["path"], field["old"], field["new"]
    if field.get("sensitive"):
        if old is not None and new is not None:
            return [("~", f"{path}: {MASK_CHANGED}")]
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


def change_lines(change: Mapping[str, Any]) -> list[tuple[str, str]]:
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


def change_title(change: Mapping[str, Any]) -> str:
    source = f" ({change['source']})" if change.get("source") else ""
    protect = " [protected]" if change.get("protect") and change["action"] == "delete" else ""
    replacement = change.get("replacement")
    if replacement is not None:
        return f"replace {replacement['old']} -> {replacement['new']}{source}{protect}"
    return f"{VERBS[change['action']]} {change['user_id']}{source}{protect}"


def replacement_warning(replacement: Mapping[str, Any]) -> str:
    """What a replacement means for the bot, in one sentence."""
    return (
        f"the userId changes, so the bot's identity changes: {replacement['old']} is deleted"
        f" and {replacement['new']} created (users see a new bot; what RongCloud keeps for"
        f" {replacement['old']} is not moved over)"
    )


def shown_changes(changes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The changes as renderers list them: a replacement once, as its delete (with the
    create's source), in the delete's place; its create is left out."""
    creates = {
        change["user_id"]: change
        for change in changes
        if change["action"] == "create" and change.get("replacement")
    }
    shown: list[Mapping[str, Any]] = []
    for change in changes:
        replacement = change.get("replacement")
        if replacement is None:
            shown.append(change)
        elif change["action"] == "delete":
            create = creates.get(replacement["new"], {})
            shown.append({**change, "source": create.get("source")})
    return shown


def change_symbol(change: Mapping[str, Any]) -> str:
    return SYMBOLS["replace" if change.get("replacement") else change["action"]]


# --- text --------------------------------------------------------------------------------


def render_text(docs: Sequence[Mapping[str, Any]], *, color: bool = False) -> str:
    """The human plan for a terminal, one block per app in the given order."""
    return "\n".join(_text_plan(doc, color) for doc in docs)


def _paint(text: str, key: str, color: bool) -> str:
    return f"\x1b[{_COLORS[key]}m{text}\x1b[0m" if color else text


def _unchecked_note(names: Sequence[str]) -> str:
    return (
        "Not checked in this run (no value in the environment): "
        + ", ".join(names)
        + "; each reference is taken as unchanged where the state records it"
    )


def _state_note(state: Mapping[str, Any]) -> str:
    if state.get("lineage") is None:
        return "no recorded state yet"
    return f"state serial {state['serial']}, lineage {state['lineage']}"


def _text_plan(doc: Mapping[str, Any], color: bool) -> str:
    state = doc["state"]
    lines = [
        terminal_safe(f"Plan for app {doc['app']}: {summary(doc)}"),
        f"Plan id: {doc['id']} ({_state_note(state)})",
    ]
    if doc.get("unchecked"):
        lines.append(terminal_safe(_unchecked_note(doc["unchecked"])))
    if doc["changes"]:
        lines.append("")
    for change in shown_changes(doc["changes"]):
        symbol = change_symbol(change)
        lines.append(f"  {_paint(symbol, symbol, color)} {terminal_safe(change_title(change))}")
        if change.get("replacement") is not None:
            mark = _paint("!", "!", color)
            warning = terminal_safe(replacement_warning(change["replacement"]))
            lines.append(f"      {mark} warning: {warning}")
        lines.extend(
            f"      {_paint(sym, sym, color)} {terminal_safe(text)}"
            for sym, text in change_lines(change)
        )
    if doc["drift"]:
        lines += ["", "Drift (changed on the server outside git; recorded -> live):"]
        for drift in doc["drift"]:
            mark = _paint("!", "!", color)
            who = terminal_safe(drift["user_id"])
            if drift["kind"] == "missing":
                lines.append(f"  {mark} {who}: missing on the server")
                continue
            lines.append(f"  {mark} {who}: changed on the server")
            for field in drift["fields"]:
                lines.extend(
                    f"      {_paint(sym, sym, color)} {terminal_safe(text)}"
                    for sym, text in field_lines(field)
                )
    if doc["unmanaged"]:
        lines += [
            "",
            "Unmanaged (on the server, never recorded, not declared; left alone): "
            + terminal_safe(", ".join(doc["unmanaged"])),
        ]
    if doc["blocked"]:
        lines += [
            "",
            _paint("Blocked by a safety rule (nothing will be applied):", "blocked", color),
        ]
        lines.extend(f"  - {terminal_safe(reason)}" for reason in doc["blocked"])
    return "\n".join(lines) + "\n"


# --- json --------------------------------------------------------------------------------


def render_json(docs: Sequence[Mapping[str, Any]], *, format_version: int = 1) -> str:
    """``{"format_version": 1, "plans": [...]}``, sorted keys, indent 2, trailing newline."""
    document = {"format_version": format_version, "plans": list(docs)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- markdown ----------------------------------------------------------------------------


def render_markdown(docs: Sequence[Mapping[str, Any]], *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: summary with counts and plan ids, deletions first with a
    warning, a table of changed fields per bot, details folded; under ``limit`` characters."""
    full = _markdown(docs, details=True)
    if len(full) <= limit:
        return full
    compact = _markdown(docs, details=False)
    note = (
        "\n> [!NOTE]\n> The plan was too long for one comment and is truncated here. Run"
        " `provisioner plan --format json` or see the saved `plan --out` file for all of it.\n"
    )
    if len(compact) + len(note) <= limit:
        return compact + note
    budget = limit - len(note) - 1
    kept: list[str] = []
    used = 0
    for line in compact.splitlines(keepends=True):
        if used + len(line) > budget:
            break
        kept.append(line)
        used += len(line)
    return "".join(kept) + "\n" + note


def _markdown(docs: Sequence[Mapping[str, Any]], *, details: bool) -> str:
    parts = [MARKDOWN_MARKER]
    if len(docs) > 1:
        parts.append(_markdown_overview(docs))
    for doc in docs:
        parts.append(_markdown_plan(doc, details=details))
    return "\n".join(parts)


def _markdown_overview(docs: Sequence[Mapping[str, Any]]) -> str:
    """The line above the apps' sections when a comment covers several: total counts, which
    apps are blocked, which have nothing to do."""
    totals: dict[str, int] = {}
    for doc in docs:
        for key, count in doc["counts"].items():
            totals[key] = totals.get(key, 0) + count
    line = f"## Plan for {len(docs)} apps: {summary({'counts': totals})}"
    blocked = [_code(doc["app"]) for doc in docs if doc["blocked"]]
    if blocked:
        line += f" — **BLOCKED**: {', '.join(blocked)}"
    out = [line, ""]
    unchanged = [_code(doc["app"]) for doc in docs if not doc["changes"]]
    if unchanged:
        out += [f"No changes: {', '.join(unchanged)}", ""]
    return "\n".join(out)


def _markdown_plan(doc: Mapping[str, Any], *, details: bool) -> str:
    blocked = " — **BLOCKED**" if doc["blocked"] else ""
    out = [
        f"### Plan for `{doc['app']}`: {summary(doc)}{blocked}",
        "",
        f"Plan id: `{doc['id']}` ({_state_note(doc['state'])})",
        "",
    ]
    if doc.get("unchecked"):
        out += [markdown_text(_unchecked_note(doc["unchecked"])), ""]
    deletes = [change for change in doc["changes"] if change["action"] == "delete"]
    plain = [change for change in deletes if not change.get("replacement")]
    replaced = [change["replacement"] for change in deletes if change.get("replacement")]
    if deletes:
        out.append("> [!WARNING]")
    if plain:
        names = ", ".join(_code(change["user_id"]) for change in plain)
        count = f"{len(plain)} bot" + ("s" if len(plain) != 1 else "")
        out.append(f"> **{count} will be deleted:** {names}")
    for replacement in replaced:
        if plain or replacement is not replaced[0]:
            out.append(">")
        pair = f"{_code(replacement['old'])} → {_code(replacement['new'])}"
        out.append(f"> **Replaced** {pair}: {_cell(replacement_warning(replacement))}")
    if deletes:
        out.append("")
    if doc["blocked"]:
        out += ["> [!CAUTION]", "> **Blocked by a safety rule; nothing will be applied:**"]
        out += [f"> - {_cell(reason)}" for reason in doc["blocked"]]
        out.append("")
    if doc["changes"]:
        out += _markdown_table(doc["changes"])
    if doc["drift"]:
        out += ["", "**Drift** (changed on the server outside git; recorded → live):", ""]
        for drift in doc["drift"]:
            if drift["kind"] == "missing":
                out.append(f"- {_code(drift['user_id'])}: missing on the server")
                continue
            shown = "; ".join(
                _cell(text) for field in drift["fields"] for _, text in field_lines(field)
            )
            out.append(f"- {_code(drift['user_id'])}: {shown}")
    if doc["unmanaged"]:
        names = ", ".join(_code(name) for name in doc["unmanaged"])
        out += ["", f"**Unmanaged** (on the server, never recorded; left alone): {names}"]
    if details and doc["changes"]:
        text = _text_plan(doc, color=False)
        fence = markdown_fence(text)
        out += ["", "<details><summary>Full plan</summary>", "", f"{fence}text", text.rstrip()]
        out += [fence, "", "</details>"]
    return "\n".join(out) + "\n"


def _markdown_table(changes: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = ["| Action | Bot | Field | Before | After |", "|---|---|---|---|---|"]
    for change in shown_changes(changes):
        replacement = change.get("replacement")
        verb = "replace" if replacement else change["action"]
        action = f"{change_symbol(change)} {verb}"
        bot = _code(change["user_id"])
        if replacement:
            bot = f"{_code(replacement['old'])} → {_code(replacement['new'])}"
        cells = _table_cells(change)
        if not cells:
            rows.append(f"| {action} | {bot} | | | |")
        for index, (field, before, after) in enumerate(cells):
            first = index == 0
            lead = f"| {action} | {bot} |" if first else "| | |"
            rows.append(f"{lead} {field} | {before} | {after} |")
    return rows


def _table_cells(change: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    replacement = change.get("replacement")
    if replacement is not None:
        return [_field_cells(field) for field in replacement["fields"]]
    if change["action"] == "create":
        return [("*(new bot)*", "", "")]
    if change["action"] == "delete":
        return [("*(whole bot)*", "", "protected" if change.get("protect") else "")]
    return [_field_cells(field) for field in change["fields"]]


def _field_cells(field: Mapping[str, Any]) -> tuple[str, str, str]:
    if field.get("sensitive"):
        before = MASK if field["old"] is not None else ""
        after = (
            (MASK_CHANGED if field["old"] is not None else MASK) if field["new"] is not None else ""
        )
    else:
        before = _code(show(field["old"])) if field["old"] is not None else ""
        after = _code(show(field["new"])) if field["new"] is not None else ""
    return _code(field["path"]), before, after


def _code(text: str, width: int = 200) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return safe_code(text)


def _cell(text: str) -> str:
    return markdown_text(text)


# --- pieces for the GitHub comment (provisioner/github/comment.py) -------------------------


def markdown_app_section(doc: Mapping[str, Any], *, details: bool = True) -> str:
    """One app's markdown section exactly as :func:`render_markdown` writes it (heading,
    plan id, deletion warning, blocked reasons, table of changes, drift, unmanaged bots and,
    with ``details``, the full text plan folded)."""
    return _markdown_plan(doc, details=details)


def markdown_code(text: str) -> str:
    """``text`` as inline code safe in a table cell (backticks and pipes handled)."""
    return _code(text)


def cut_markdown(text: str, limit: int, note: str, *, size: Callable[[str], int] = len) -> str:
    """``text`` when ``size(text) <= limit``; else its longest run of whole leading lines that
    fits together with what closes it (an open code fence, open ``<details>``) and ``note``.

    ``size`` measures: ``len`` counts code points (GitHub's comment limit), a UTF-8 byte
    count suits the step summary. The result never exceeds ``limit`` when ``note`` fits.
    """
    if size(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    fence: str | None = None
    depth = 0
    for line in text.splitlines(keepends=True):
        next_fence, next_depth = _markdown_state(line, fence, depth)
        closers = _closers(next_fence, next_depth)
        if used + size(line) + size(closers) + size(note) > limit:
            break
        kept.append(line)
        used += size(line)
        fence, depth = next_fence, next_depth
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    return body + _closers(fence, depth) + note


def _markdown_state(line: str, fence: str | None, depth: int) -> tuple[str | None, int]:
    """The open fence and ``<details>`` depth after ``line``."""
    stripped = line.strip()
    if fence is not None:
        return (None, depth) if stripped == fence else (fence, depth)
    if stripped.startswith("```"):
        return stripped[: len(stripped) - len(stripped.lstrip("`"))], depth
    opened = stripped.count("<details")
    closed = stripped.count("</details>")
    return None, max(0, depth + opened - closed)


def _closers(fence: str | None, depth: int) -> str:
    text = f"{fence}\n" if fence else ""
    return text + "\n</details>\n" * depth
