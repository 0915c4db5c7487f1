"""render/apply.py: progress lines and the end-of-apply summary."""

from __future__ import annotations

from provisioner.apply.results import ApplyResult, ChangeResult
from provisioner.errors import StateError
from provisioner.render.apply import progress_line, render_summary
from tests.apply_fakes import api_error


def test_summary_text_lists_failures_with_their_api_facts() -> None:
    failed = ChangeResult("create", "b", "failed", error=api_error(1502))
    result = ApplyResult(
        "demo",
        "abc",
        (
            ChangeResult("delete", "a", "applied", note="already absent on the server"),
            failed,
            ChangeResult("update", "c", "not_attempted"),
        ),
    )
    assert render_summary(result) == (
        "\n"
        "Apply incomplete for app demo: 1 applied, 1 failed, 1 not attempted.\n"
        "  Failed:\n"
        "    + b (create)\n"
        "        RongCloud refused the call (1502)\n"
        '        endpoint /v3/bot/create.json, HTTP 400, code 1502, errorMessage "error 1502",'
        " X-Request-ID req-1502\n"
        "  Not attempted:\n"
        "    ~ c (update)\n"
    )
    assert progress_line("demo", result.results[0]) == (
        "demo: - a: deleted (already absent on the server)"
    )
    assert progress_line("demo", failed) == (
        "demo: + b: create failed: RongCloud refused the call (1502)"
    )
    assert progress_line("demo", result.results[2]) == "demo: ~ c: not attempted"


def test_summary_says_when_the_state_was_not_saved() -> None:
    result = ApplyResult(
        "demo",
        "abc",
        (ChangeResult("create", "a", "applied"),),
        persist_error=StateError(
            "could not push the state", hint="run `provisioner state push demo x.json`"
        ),
    )
    assert render_summary(result) == (
        "\n"
        "Apply incomplete for app demo: 1 applied, 0 failed, 0 not attempted.\n"
        "  State not saved where it must go (the calls above were made):\n"
        "        could not push the state\n"
        "        hint: run `provisioner state push demo x.json`\n"
    )
