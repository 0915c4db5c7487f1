"""The plan in markdown (a pull-request comment, a job summary), and markdown cut to a limit.

Pure: plan documents in, a string out; built from the pieces of
:mod:`provisioner.render.plan`, with everything a manifest controls made safe
(:mod:`provisioner.render.safe`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from provisioner.plan.document import ChangeDoc, DriftDoc, FieldDoc, PlanDoc
from provisioner.render.fleet import has_news, is_fleet
from provisioner.render.plan import (
    app_text,
    change_symbol,
    counts_summary,
    field_lines,
    replacement_warning,
    sensitive_change,
    show,
    shown_changes,
    state_note,
    summary,
    total_counts,
    unchecked_note,
)
from provisioner.render.safe import html_comment_safe, markdown_fence, markdown_text
from provisioner.render.safe import markdown_code as safe_code
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr
from provisioner.secrets import MASK

MARKDOWN_LIMIT = 60_000
"""Markdown is kept under this many characters (a GitHub comment holds 65,536)."""

MARKDOWN_MARKER = "<!-- provisioner:plan -->"
"""Hidden marker so a CI job can find and update its own pull-request comment."""
BLOCKED_NOTE = tr(DEFAULT_LANG, "md.blocked_note")


def render_markdown(
    docs: Sequence[PlanDoc], *, limit: int = MARKDOWN_LIMIT, lang: Lang = DEFAULT_LANG
) -> str:
    """A pull-request comment: summary with counts and plan ids, deletions first with a
    warning, a table of changed fields per bot, details folded; under ``limit`` characters."""
    full = _markdown(docs, details=True, lang=lang)
    if len(full) <= limit:
        return full
    compact = _markdown(docs, details=False, lang=lang)
    note = tr(lang, "md.truncated")
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


def _markdown(docs: Sequence[PlanDoc], *, details: bool, lang: Lang) -> str:
    """Beyond :data:`~provisioner.models.MANY_APPS` apps, only the apps with something to
    show get a section, and the apps without changes are named once, after them."""
    fleet = is_fleet(len(docs))
    parts = [MARKDOWN_MARKER]
    if len(docs) > 1:
        parts.append(_markdown_overview(docs, lang, unchanged=not fleet))
    for doc in docs:
        if not fleet or has_news(doc):
            parts.append(markdown_app_section(doc, details=details, lang=lang))
    if fleet:
        parts.append(_unchanged_line(docs, lang))
    return "\n".join(parts)


def _unchanged_line(docs: Sequence[PlanDoc], lang: Lang) -> str:
    unchanged = [markdown_code(doc["app"]) for doc in docs if not doc["changes"]]
    return tr(lang, "md.no_changes", apps=join(lang, unchanged)) + "\n" if unchanged else ""


def _markdown_overview(docs: Sequence[PlanDoc], lang: Lang, *, unchanged: bool = True) -> str:
    """The lines above the apps' sections when a comment covers several: which apps are
    blocked and why (first), total counts, which apps have nothing to do (``unchanged``)."""
    counts = counts_summary(total_counts(docs), lang)
    title = tr(lang, "md.overview", count=len(docs), blocked=blocked_title(docs, lang))
    out = [f"{title}{counts}", ""]
    out += blocked_summary(docs, lang)
    if unchanged and (line := _unchanged_line(docs, lang)):
        out += [line]
    return "\n".join(out)


def blocked_title(docs: Sequence[PlanDoc], lang: Lang = DEFAULT_LANG) -> str:
    """``BLOCKED (1 of 3 apps) — `` for a heading that must say first that plans are
    blocked; empty when none is."""
    blocked = sum(1 for doc in docs if doc["blocked"])
    return tr(lang, "md.blocked_title", blocked=blocked, count=len(docs)) if blocked else ""


def blocked_summary(docs: Sequence[PlanDoc], lang: Lang = DEFAULT_LANG) -> list[str]:
    """The caution block that opens a blocked plan: each blocked app with each reason (a
    reason says how to lift it); nothing when no plan is blocked."""
    return _blocked_caution(
        [
            f"{markdown_code(doc['app'])}: {markdown_text(' '.join(reason.split()))}"
            for doc in docs
            for reason in doc["blocked"]
        ],
        lang,
    )


def _blocked_caution(rows: Sequence[str], lang: Lang) -> list[str]:
    if not rows:
        return []
    note = tr(lang, "md.blocked_note")
    return ["> [!CAUTION]", f"> {note}", *(f"> - {row}" for row in rows), ""]


def markdown_app_section(doc: PlanDoc, *, details: bool = True, lang: Lang = DEFAULT_LANG) -> str:
    """One app's markdown section exactly as :func:`render_markdown` writes it (heading,
    blocked reasons, plan id, deletion warning, table of changes, drift, unmanaged bots and,
    with ``details``, the full text plan folded)."""
    blocked = tr(lang, "md.blocked") if doc["blocked"] else ""
    app, counts = markdown_code(doc["app"]), summary(doc, lang)
    out = [tr(lang, "md.app_heading", app=app, blocked=blocked, summary=counts), ""]
    out += _blocked_caution([markdown_text(reason) for reason in doc["blocked"]], lang)
    note = markdown_text(state_note(doc["state"], lang))
    out += [tr(lang, "md.plan_id", id=doc["id"], state=note), ""]
    if doc.get("unchecked"):
        out += [markdown_text(unchecked_note(doc["unchecked"], lang)), ""]
    out += _deletion_warning(doc["changes"], lang)
    if doc["changes"]:
        out += _markdown_table(doc["changes"], lang)
    out += _markdown_drift(doc["drift"], lang)
    if doc["unmanaged"]:
        names = join(lang, (markdown_code(name) for name in doc["unmanaged"]))
        out += ["", tr(lang, "md.unmanaged", names=names)]
    if details and doc["changes"]:
        out += _full_plan(doc, lang)
    return "\n".join(out) + "\n"


def _deletion_warning(changes: Sequence[ChangeDoc], lang: Lang) -> list[str]:
    """The warning block over the bots deleted, and each replacement with what it means."""
    deletes = [change for change in changes if change["action"] == "delete"]
    if not deletes:
        return []
    plain = [change for change in deletes if not change.get("replacement")]
    replaced = [found for change in deletes if (found := change.get("replacement"))]
    out = ["> [!WARNING]"]
    if plain:
        names = join(lang, (markdown_code(change["user_id"]) for change in plain))
        out.append("> " + plural(lang, "md.will_be_deleted", len(plain), names=names))
    for index, replacement in enumerate(replaced):
        if plain or index:
            out.append(">")
        pair = f"{markdown_code(replacement['old'])} → {markdown_code(replacement['new'])}"
        warning = markdown_text(replacement_warning(replacement, lang))
        out.append("> " + tr(lang, "md.replaced", pair=pair, warning=warning))
    return [*out, ""]


def _markdown_drift(drift: Sequence[DriftDoc], lang: Lang) -> list[str]:
    if not drift:
        return []
    out = ["", tr(lang, "md.drift"), ""]
    for item in drift:
        if item["kind"] == "missing":
            out.append(f"- {markdown_code(item['user_id'])}: {tr(lang, 'md.missing')}")
            continue
        shown = "; ".join(
            markdown_text(text) for field in item["fields"] for _, text in field_lines(field)
        )
        out.append(f"- {markdown_code(item['user_id'])}: {shown}")
    return out


def _full_plan(doc: PlanDoc, lang: Lang) -> list[str]:
    """The text plan (the CLI's own, in English), folded in ``<details>``."""
    text = html_comment_safe(app_text(doc))
    fence = markdown_fence(text)
    return [
        "",
        f"<details><summary>{tr(lang, 'md.full_plan')}</summary>",
        "",
        f"{fence}text",
        text.rstrip(),
        fence,
        "",
        "</details>",
    ]


def _markdown_table(changes: Sequence[ChangeDoc], lang: Lang) -> list[str]:
    rows = [tr(lang, "md.table_header"), "|---|---|---|---|---|"]
    for change in shown_changes(changes):
        replacement = change.get("replacement")
        verb = tr(lang, f"action.{'replace' if replacement else change['action']}")
        action = f"{change_symbol(change)} {verb}"
        bot = markdown_code(change["user_id"])
        if replacement:
            bot = f"{markdown_code(replacement['old'])} → {markdown_code(replacement['new'])}"
        cells = _table_cells(change, lang)
        if not cells:
            rows.append(f"| {action} | {bot} | | | |")
        for index, (field, before, after) in enumerate(cells):
            first = index == 0
            lead = f"| {action} | {bot} |" if first else "| | |"
            rows.append(f"{lead} {field} | {before} | {after} |")
    return rows


def _table_cells(change: ChangeDoc, lang: Lang) -> list[tuple[str, str, str]]:
    replacement = change.get("replacement")
    if replacement is not None:
        return [_field_cells(field) for field in replacement["fields"]]
    if change["action"] == "create":
        return [(tr(lang, "md.new_bot"), "", "")]
    if change["action"] == "delete":
        protected = tr(lang, "md.protected") if change.get("protect") else ""
        return [(tr(lang, "md.whole_bot"), "", protected)]
    return [_field_cells(field) for field in change["fields"]]


def _field_cells(field: FieldDoc) -> tuple[str, str, str]:
    old, new = field["old"], field["new"]
    if field.get("sensitive"):
        before = MASK if old is not None else ""
        after = (sensitive_change(field) if old is not None else MASK) if new is not None else ""
    else:
        before = markdown_code(show(old)) if old is not None else ""
        after = markdown_code(show(new)) if new is not None else ""
    return markdown_code(field["path"]), before, after


def markdown_code(text: str, width: int = 200) -> str:
    """``text`` as inline code safe in a table cell (backticks and pipes handled), cut to
    ``width`` characters with an ellipsis."""
    if len(text) > width:
        text = text[: width - 1] + "…"
    return safe_code(text)


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
