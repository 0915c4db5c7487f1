"""Diagnostics -> text | JSON | GitHub workflow annotations. Pure: returns strings.

Text (one problem per line, then its hint)::

    bots/demo/x.yaml:12:7: error: integrations[1].callbackUrl: must be the Dify API base ...
      hint: use the API base without the endpoint path: https://api.dify.ai/v1

JSON: a list of objects with exactly the keys file, line, column, path, code, severity,
message, hint (the stable ``--format json`` contract).

GitHub: ``::error file=F,line=L,col=C,title=CODE::MESSAGE`` with GitHub's escaping.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable

from provisioner.diagnostics import Diagnostic
from provisioner.render.safe import html_comment_safe, json_terminal_safe, terminal_safe

Styler = Callable[[str, str], str]
"""``style(text, severity)`` -> text (the CLI passes one that adds colour on a terminal)."""


def _plain(text: str, severity: str) -> str:
    return text


def render_text(diagnostics: Iterable[Diagnostic], *, style: Styler = _plain) -> str:
    """One line per diagnostic (``file:line:col: severity: path: message``) plus a hint line."""
    lines: list[str] = []
    for diagnostic in diagnostics:
        where = f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}"
        label = style(f"{diagnostic.severity}:", diagnostic.severity)
        subject = f"{diagnostic.path}: " if diagnostic.path else ""
        lines.append(
            terminal_safe(f"{where}: ") + label + terminal_safe(f" {subject}{diagnostic.message}")
        )
        if diagnostic.hint:
            lines.append(terminal_safe(f"  hint: {diagnostic.hint}"))
    return "\n".join(lines)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """The diagnostics as a JSON list (keys in a fixed order, UTF-8 kept readable)."""
    return json.dumps([d.data for d in diagnostics], ensure_ascii=False, indent=2)


def escape_data(text: str) -> str:
    """GitHub workflow-command escaping for the message part."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """GitHub workflow-command escaping for a property value (file, title, ...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """One ``::error``/``::warning`` workflow command per diagnostic (hint on a second line)."""
    lines: list[str] = []
    for diagnostic in diagnostics:
        properties = ",".join(
            (
                f"file={escape_property(json_terminal_safe(diagnostic.file))}",
                f"line={diagnostic.line}",
                f"col={diagnostic.column}",
                f"title={escape_property(diagnostic.code)}",
            )
        )
        message = json_terminal_safe(
            f"{diagnostic.path}: {diagnostic.message}" if diagnostic.path else diagnostic.message
        )
        if diagnostic.hint:
            message += f"\nhint: {json_terminal_safe(diagnostic.hint)}"
        lines.append(f"::{diagnostic.severity} {properties}::{escape_data(message)}")
    return "\n".join(lines)


def render_markdown(diagnostics: Iterable[Diagnostic]) -> str:
    """Every diagnostic as a markdown table (for a job summary: GitHub shows only 10
    annotations of each kind per step); an empty string when there is none."""
    rows = [
        "| Where | Severity | Field | Problem | Hint |",
        "|---|---|---|---|---|",
    ]
    for diagnostic in diagnostics:
        cells = (
            f"`{diagnostic.file}:{diagnostic.line}:{diagnostic.column}`",
            diagnostic.severity,
            f"`{diagnostic.path}`" if diagnostic.path else "",
            diagnostic.message,
            diagnostic.hint or "",
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows) + "\n" if len(rows) > 2 else ""


def _cell(text: str) -> str:
    return html_comment_safe(text).replace("|", "\\|").replace("\n", " ")


CODEQUALITY_SEVERITY = {"error": "major", "warning": "minor"}


def render_codequality(diagnostics: Iterable[Diagnostic]) -> str:
    """GitLab's Code Quality report (``artifacts:reports:codequality``): a JSON array of
    ``{description, check_name, fingerprint, severity, location: {path, lines: {begin}}}``,
    no BOM; the fingerprint is stable across runs (rule, file, field path, message)."""
    issues = []
    for diagnostic in diagnostics:
        message = (
            f"{diagnostic.path}: {diagnostic.message}" if diagnostic.path else diagnostic.message
        )
        if diagnostic.hint:
            message += f" (hint: {diagnostic.hint})"
        key = "\0".join((diagnostic.code, diagnostic.file, diagnostic.path, diagnostic.message))
        issues.append(
            {
                "description": json_terminal_safe(message),
                "check_name": diagnostic.code,
                "fingerprint": hashlib.sha256(key.encode("utf-8")).hexdigest(),
                "severity": CODEQUALITY_SEVERITY.get(diagnostic.severity, "info"),
                "location": {"path": diagnostic.file, "lines": {"begin": diagnostic.line}},
            }
        )
    return json.dumps(issues, ensure_ascii=False, indent=2)
