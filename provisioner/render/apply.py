"""Apply result renderers (text): a progress line per settled change, a summary per app.

Pure: values in, strings out. Each failure shows the API facts support needs (endpoint, HTTP
status, RongCloud code, errorMessage, X-Request-ID) and never a request body, so never a secret.
The json view is :attr:`provisioner.apply.results.ApplyResult.data`.
"""

from __future__ import annotations

from provisioner.apply.results import ApplyResult, ChangeResult, error_data
from provisioner.errors import ProvisionerError
from provisioner.render.safe import terminal_safe

SYMBOLS = {"delete": "-", "create": "+", "adopt": "<=", "update": "~"}
PAST = {"delete": "deleted", "create": "created", "adopt": "adopted", "update": "updated"}


def progress_line(app: str, result: ChangeResult) -> str:
    """One line as a change settles: ``demo: + bot: created (note)``."""
    return terminal_safe(f"{app}: {_progress(result)}")


def _progress(result: ChangeResult) -> str:
    symbol = SYMBOLS.get(result.action, "?")
    head = f"{symbol} {result.user_id}"
    if result.outcome == "applied":
        note = f" ({result.note})" if result.note else ""
        return f"{head}: {PAST.get(result.action, result.action)}{note}"
    if result.outcome == "failed" and result.error is not None:
        return f"{head}: {result.action} failed: {result.error.message}"
    return f"{head}: not attempted"


def render_summary(result: ApplyResult) -> str:
    """The end-of-apply summary of one app: counts, then each failure with its API facts."""
    counts = result.counts
    state = "interrupted" if result.interrupted else "complete" if result.ok else "incomplete"
    lines = [
        "",
        f"Apply {state} for app {result.app}: {counts['applied']} applied,"
        f" {counts['failed']} failed, {counts['not_attempted']} not attempted.",
    ]
    failed = [item for item in result.results if item.outcome == "failed"]
    skipped = [item for item in result.results if item.outcome == "not_attempted"]
    if failed:
        lines.append("  Failed:")
        for item in failed:
            lines.extend(_failure_lines(item))
    if skipped:
        lines.append("  Not attempted:")
        lines.extend(f"    {SYMBOLS.get(i.action, '?')} {i.user_id} ({i.action})" for i in skipped)
    if result.persist_error is not None:
        lines.append("  State not saved where it must go (the calls above were made):")
        lines.extend(_error_lines(result.persist_error))
    return "\n".join(terminal_safe(line) for line in lines) + "\n"


def _failure_lines(item: ChangeResult) -> list[str]:
    lines = [f"    {SYMBOLS.get(item.action, '?')} {item.user_id} ({item.action})"]
    return lines + (_error_lines(item.error) if item.error is not None else [])


def _error_lines(error: ProvisionerError) -> list[str]:
    """The message, the API facts support needs, and the hint of one error."""
    data = error_data(error)
    lines = [f"        {data['message']}"]
    facts = [
        f"{label} {data[key]}" if key != "errorMessage" else f'errorMessage "{data[key]}"'
        for key, label in (
            ("endpoint", "endpoint"),
            ("httpStatus", "HTTP"),
            ("code", "code"),
            ("errorMessage", "errorMessage"),
            ("requestId", "X-Request-ID"),
        )
        if data.get(key) is not None
    ]
    if facts:
        lines.append("        " + ", ".join(facts))
    if data.get("hint"):
        lines.append(f"        hint: {data['hint']}")
    return lines
