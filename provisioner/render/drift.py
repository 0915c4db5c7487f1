"""The drift report (``provisioner drift``): per app, what changed on the server outside git,
the bots there that nobody manages, and the changes git has that were not applied yet.
Pure: plan documents (made with a refresh) in, text out."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.plan.document import PlanDoc
from provisioner.render.fleet import is_fleet, render_fleet_text
from provisioner.render.plan import field_lines
from provisioner.render.safe import terminal_safe


def has_findings(doc: PlanDoc) -> bool:
    """Drift, unmanaged bots or pending changes: anything that differs from git."""
    return bool(doc["drift"] or doc["unmanaged"] or doc["changes"])


def render_drift_text(docs: Sequence[PlanDoc]) -> str:
    """One line per app (``clean``, or what was found), then the details of each finding;
    beyond :data:`~provisioner.render.fleet.MANY_APPS` apps, the table of counts, the clean
    apps on one line, then the details of the others."""
    if is_fleet(len(docs)):
        return render_fleet_text(docs, title="Drift of", quiet="clean", details=_app_text)
    return "".join(_app_text(doc) for doc in docs)


def _app_text(doc: PlanDoc) -> str:
    if not has_findings(doc):
        return terminal_safe(f"{doc['app']}: clean") + "\n"
    parts = []
    if doc["drift"]:
        parts.append(f"{len(doc['drift'])} drifted")
    if doc["unmanaged"]:
        parts.append(f"{len(doc['unmanaged'])} unmanaged")
    if doc["changes"]:
        parts.append(f"{len(doc['changes'])} pending")
    lines = [f"{doc['app']}: " + ", ".join(parts)]
    for drift in doc["drift"]:
        if drift["kind"] == "missing":
            lines.append(f"  ! {drift['user_id']}: missing on the server")
            continue
        lines.append(f"  ! {drift['user_id']}: changed on the server (recorded -> live)")
        lines += [
            f"      {symbol} {text}"
            for field in drift["fields"]
            for symbol, text in field_lines(field)
        ]
    lines += [f"  ? {user_id}: on the server, not managed by git" for user_id in doc["unmanaged"]]
    lines += [
        f"  ~ {change['user_id']}: {change['action']} pending (not applied yet)"
        for change in doc["changes"]
    ]
    return "".join(terminal_safe(line) + "\n" for line in lines)
