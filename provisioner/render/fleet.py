"""Text output at fleet size: beyond :data:`MANY_APPS` apps, a run's text leads with a table of
counts per app that has something to show, lists the apps with nothing to show on one line,
then gives the details of the others only. The json format stays complete.

Pure: plan documents in, text out (the CLI chooses, by :func:`is_fleet`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from provisioner.models import MANY_APPS
from provisioner.plan.document import CountKey, PlanDoc
from provisioner.render.plan import app_text, counts_summary, render_text, total_counts
from provisioner.render.safe import terminal_safe

_COLUMNS: tuple[tuple[CountKey, str], ...] = (
    ("replace", "replace"),
    ("delete", "delete"),
    ("create", "create"),
    ("adopt", "adopt"),
    ("update", "update"),
    ("drift", "drift"),
    ("unmanaged", "unmanaged"),
)


def is_fleet(count: int) -> bool:
    """True when a run over ``count`` apps summarises its text output."""
    return count > MANY_APPS


def has_news(doc: PlanDoc) -> bool:
    """Anything to show beyond "no changes": a change, drift, unmanaged bots, a block."""
    return bool(doc["changes"] or doc["drift"] or doc["unmanaged"] or doc["blocked"])


def fleet_table(docs: Sequence[PlanDoc], title: str, quiet: str) -> list[str]:
    """``title`` with the total counts, the table of counts of the apps with news, and the
    one line naming the others (``quiet``: what they are, e.g. ``unchanged``)."""
    loud = [doc for doc in docs if has_news(doc)]
    calm = [doc["app"] for doc in docs if not has_news(doc)]
    totals = counts_summary(total_counts(docs))
    heading = f"{title} {len(docs)} apps: {totals}; {len(loud)} to show, {len(calm)} {quiet}"
    lines = [terminal_safe(heading)]
    if loud:
        width = max(len("app"), *(len(doc["app"]) for doc in loud))
        header = "  " + "app".ljust(width) + "".join(f"  {name:>9}" for _, name in _COLUMNS)
        lines += ["", header]
        for doc in loud:
            counts = "".join(f"  {doc['counts'].get(key, 0):>9}" for key, _ in _COLUMNS)
            blocked = "  blocked" if doc["blocked"] else ""
            lines.append(terminal_safe("  " + doc["app"].ljust(width) + counts + blocked))
    if calm:
        lines += ["", terminal_safe(f"{quiet.capitalize()} ({len(calm)}): " + ", ".join(calm))]
    return lines


def render_fleet_text(
    docs: Sequence[PlanDoc],
    *,
    color: bool = False,
    title: str = "Plan for",
    quiet: str = "unchanged",
    details: Callable[[PlanDoc], str] | None = None,
) -> str:
    """The table (:func:`fleet_table`), then the details (default: the text plan) of every
    app with news, in the given order."""
    shown = details or (lambda doc: app_text(doc, color=color))
    blocks = [shown(doc) for doc in docs if has_news(doc)]
    head = "\n".join(fleet_table(docs, title, quiet)) + "\n"
    return "\n".join([head, *blocks]) if blocks else head


def plan_text(docs: Sequence[PlanDoc], *, color: bool = False) -> str:
    """The text plan of a run: every app's block, or beyond :data:`MANY_APPS` apps the
    summary (:func:`render_fleet_text`)."""
    if is_fleet(len(docs)):
        return render_fleet_text(docs, color=color)
    return render_text(docs, color=color)
