"""diagnostics.py: the Diagnostic value, its field paths and its constructor."""

from __future__ import annotations

from provisioner.diagnostics import Diagnostic, diagnostic_at, format_path, has_errors


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


def test_has_errors_counts_warnings_only_when_strict() -> None:
    warning = diagnostic_at("a.yaml", (1, 1), (), "w", "m", "h", severity="warning")
    error = diagnostic_at("a.yaml", (1, 1), (), "e", "m", "h")
    assert (has_errors([]), has_errors([warning]), has_errors([warning, error])) == (
        False,
        False,
        True,
    )
    assert has_errors(iter([warning]), strict=True)
    assert not has_errors([], strict=True)
