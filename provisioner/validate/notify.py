"""The ``notify:`` targets of app.yaml, said the way a person acts on: the JSON Schema finds
the problems (a literal URL or secret, a secret for a WeCom robot, a bare ``on:`` key, an
event listed twice) and :func:`explain_notify` rewrites its generic wording into what to do.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from provisioner.diagnostics import Diagnostic
from provisioner.manifest import Document
from provisioner.models import NOTIFY_KEY

URL_VARIABLES = {
    "dingtalk": "DINGTALK_WEBHOOK_URL",
    "feishu": "FEISHU_WEBHOOK_URL",
    "wecom": "WECOM_WEBHOOK_URL",
    "webhook": "NOTIFY_WEBHOOK_URL",
}
"""The variable the hints suggest for a target's ``url``, by type."""
SECRET_VARIABLES = {
    "dingtalk": "DINGTALK_SECRET",
    "feishu": "FEISHU_SECRET",
    "webhook": "NOTIFY_WEBHOOK_SECRET",
}
_TARGET_FIELD = re.compile(r"^notify\[(\d+)\]\.(\w+)$")


def explain_notify(document: Document, found: list[Diagnostic]) -> list[Diagnostic]:
    """``found`` with each schema diagnostic of a ``notify`` target reworded."""
    return [_explained(document, diagnostic) for diagnostic in found]


def _explained(document: Document, diagnostic: Diagnostic) -> Diagnostic:
    match = _TARGET_FIELD.match(diagnostic.path)
    if match is None:
        return diagnostic
    index, field = int(match.group(1)), match.group(2)
    kind = _target_type(document.value, index)
    code = diagnostic.code
    if code == "unknown-key" and field == "on":
        return replace(
            diagnostic,
            hint="write `when:` — YAML 1.1 reads a bare `on` as true, so the key is `when`",
        )
    if code == "schema-pattern" and field in ("url", "secret"):
        return _literal(diagnostic, field, kind)
    if code == "schema-not" and field == "secret":
        return replace(
            diagnostic,
            code="notify-secret-unsupported",
            message="a WeCom group robot has no signing secret",
            hint="remove it; protect the robot with keywords or an IP allow-list in its"
            " settings (docs/notify.md)",
        )
    if code == "schema-min-items" and field == "when":
        return replace(
            diagnostic,
            message="must list at least one event",
            hint="list drift, apply or failure, or leave `when` out for all three",
        )
    if code == "schema-uniqueItems" and field == "when":
        return replace(
            diagnostic,
            message="lists an event twice",
            hint="list each of drift, apply and failure at most once",
        )
    return diagnostic


def _literal(diagnostic: Diagnostic, field: str, kind: str | None) -> Diagnostic:
    if field == "url":
        variable = URL_VARIABLES.get(kind or "", URL_VARIABLES["webhook"])
        what, why = "webhook address", "the address carries the robot's token"
    else:
        variable = SECRET_VARIABLES.get(kind or "", SECRET_VARIABLES["webhook"])
        what, why = "signing secret", "anyone who has it can post as the robot"
    return replace(
        diagnostic,
        code="secret-literal",
        message=f"holds a literal {what}; it must be a ${{NAME}} environment reference",
        hint=f"{why}: keep it in a secret and write {field}: ${{{variable}}} (never commit it)",
    )


def _target_type(value: Any, index: int) -> str | None:
    targets = value.get(NOTIFY_KEY) if isinstance(value, dict) else None
    if not isinstance(targets, list) or index >= len(targets):
        return None
    target = targets[index]
    kind = target.get("type") if isinstance(target, dict) else None
    return kind if isinstance(kind, str) else None
