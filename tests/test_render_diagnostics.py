"""render/diagnostics.py: text, JSON and GitHub annotations (with GitHub's escaping)."""

from __future__ import annotations

import json

from provisioner.diagnostics import Diagnostic
from provisioner.render.diagnostics import (
    escape_data,
    escape_property,
    render_github,
    render_json,
    render_markdown,
    render_text,
)

ERROR = Diagnostic(
    file="bots/demo/x.yaml",
    line=12,
    column=7,
    path="integrations[1].callbackUrl",
    code="dify-callback-url",
    severity="error",
    message="must be the Dify API base URL ending in /v1",
    hint="use the API base without the endpoint path: https://api.dify.ai/v1",
)
WARNING = Diagnostic(
    file="bots/a,b:c.yaml",
    line=1,
    column=1,
    path="",
    code="insecure-url",
    severity="warning",
    message="100% plain\r\nhttp",
)


def test_text_has_location_severity_path_message_and_hint() -> None:
    assert render_text([ERROR, WARNING]).split("\n") == [
        "bots/demo/x.yaml:12:7: error: integrations[1].callbackUrl: must be the Dify API base "
        "URL ending in /v1",
        "  hint: use the API base without the endpoint path: https://api.dify.ai/v1",
        "bots/a,b:c.yaml:1:1: warning: 100% plain\\u000d\\u000ahttp",  # one line, always
    ]
    styled = render_text([ERROR], style=lambda text, severity: f"<{severity}>{text}")
    assert styled.startswith("bots/demo/x.yaml:12:7: <error>error: integrations")
    assert render_text([]) == ""


def test_json_is_a_stable_list_of_objects() -> None:
    data = json.loads(render_json([ERROR, WARNING]))
    assert list(data[0]) == [
        "file",
        "line",
        "column",
        "path",
        "code",
        "severity",
        "message",
        "hint",
    ]
    assert data[0]["line"] == 12
    assert data[1]["hint"] is None
    assert json.loads(render_json([])) == []


def test_github_escaping() -> None:
    assert escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"


def test_github_annotations() -> None:
    assert render_github([ERROR, WARNING]).splitlines() == [
        "::error file=bots/demo/x.yaml,line=12,col=7,title=dify-callback-url::"
        "integrations[1].callbackUrl: must be the Dify API base URL ending in /v1"
        "%0Ahint: use the API base without the endpoint path: https://api.dify.ai/v1",
        "::warning file=bots/a%2Cb%3Ac.yaml,line=1,col=1,title=insecure-url::"
        "100%25 plain%0D%0Ahttp",
    ]


def test_markdown_table_lists_every_diagnostic() -> None:
    diagnostics = [
        Diagnostic("bots/a.yaml", 3, 7, "name", "schema-type", "error", "bad | value", "quote it"),
        Diagnostic("bots/b.yaml", 1, 1, "", "yaml", "warning", "odd\nthing"),
    ]
    assert render_markdown(diagnostics) == (
        "| Where | Severity | Field | Problem | Hint |\n"
        "|---|---|---|---|---|\n"
        "| `bots/a.yaml:3:7` | error | `name` | bad \\| value | quote it |\n"
        "| `bots/b.yaml:1:1` | warning |  | odd thing |  |\n"
    )
    assert render_markdown([]) == ""


def test_markdown_table_cannot_open_a_comment() -> None:
    hostile = Diagnostic("bots/<!--.yaml", 1, 1, "metadata", "x", "error", "key '<!--' -->")
    table = render_markdown([hostile])
    assert "<!--" not in table and "-->" not in table
    assert "`bots/\\u003c!--.yaml:1:1`" in table and "key '\\u003c!--' --\\u003e" in table
