"""diagnostics.py: the Diagnostic value, its field paths and its constructor."""

from __future__ import annotations

from provisioner.diagnostics import Diagnostic, diagnostic_at, format_path


def test_format_path() -> None:
    assert format_path(()) == ""
    assert format_path(("integrations", 1, "callbackUrl")) == "integrations[1].callbackUrl"
    assert format_path(("metadata", "version")) == "metadata.version"


def test_diagnostic_at_names_file_position_and_field() -> None:
    found = diagnostic_at("bots/demo/a.yaml", (3, 7), ("metadata", "v"), "code", "bad", "fix it")
    assert found == Diagnostic(
        file="bots/demo/a.yaml",
        line=3,
        column=7,
        path="metadata.v",
        code="code",
        severity="error",
        message="bad",
        hint="fix it",
    )
