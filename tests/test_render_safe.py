"""render/safe.py, and every renderer through it: text that a manifest, a file name or a
server controls cannot restyle, move or hide terminal output, nor inject markup into a
pull-request comment."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from provisioner.cli import main
from provisioner.render.safe import (
    html_comment_safe,
    json_terminal_safe,
    markdown_code,
    markdown_fence,
    markdown_text,
    terminal_safe,
)

UNSAFE = "\x1b[31m\x1b]8;;https://evil\x07\u202e\u200b\n\r\x9b"
RAW = ("\x1b", "\x07", "\u202e", "\u200b", "\x9b", "\r")


def test_terminal_safe_escapes_controls_bidi_zero_width_and_newlines() -> None:
    assert terminal_safe("ok 消息 \\ plain") == "ok 消息 \\ plain"
    assert terminal_safe(UNSAFE) == (
        "\\u001b[31m\\u001b]8;;https://evil\\u0007\\u202e\\u200b\\u000a\\u000d\\u009b"
    )


def test_json_terminal_safe_keeps_valid_json_with_the_same_value() -> None:
    text = json_terminal_safe(json.dumps("a\u202eb\x1bc", ensure_ascii=False))
    assert text == '"a\\u202eb\\u001bc"' and json.loads(text) == "a\u202eb\x1bc"


def test_markdown_code_cannot_be_closed_by_backticks() -> None:
    assert markdown_code("plain") == "`plain`"
    assert markdown_code("a ``` b") == "```` a ``` b ````"
    assert markdown_code("`x` | y") == "`` `x` \\| y ``"
    assert markdown_fence("one ``` two ````` three") == "``````"
    assert markdown_fence("none") == "```"


def test_markdown_text_has_no_markup() -> None:
    assert markdown_text("<img src=x onerror=alert(1)> & | `") == (
        "&lt;img src=x onerror=alert(1)> &amp; \\| `"
    )


def test_no_value_can_open_or_close_an_html_comment() -> None:
    assert html_comment_safe("<!-- x --> <b> a->b <-- --!> <!") == (
        "\\u003c!-- x --\\u003e <b> a->b <-- --!\\u003e <!"
    )
    marker = "<!-- provisioner:apply -->"
    assert markdown_code(marker) == "`\\u003c!-- provisioner:apply --\\u003e`"
    assert markdown_text(marker) == "\\u003c!-- provisioner:apply --\\u003e"
    for text in (marker, "<!--->", "a<!--<!---->-->", "--->"):
        for safe in (markdown_code(text), markdown_text(text), html_comment_safe(text)):
            assert "<!--" not in safe and "-->" not in safe and "--!>" not in safe, safe


@pytest.fixture
def hostile_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "bots" / "demo"
    folder.mkdir(parents=True)
    (folder / "app.yaml").write_text("endpoint: local\n", encoding="utf-8")
    manifest = {
        "userId": "bot\u202eevil\u200b<b>",
        "name": "Name \u202e\u200b",  # controls and line breaks: refused in a name
        "type": "Type " + UNSAFE,
        "profileUrl": "https://example.com/p.png",
        "metadata": {"k\u202e": "<script>alert(1)</script> ```"},
        "integrations": [{"type": "webhook", "callbackUrl": "https://example.com/h"}],
    }
    name = "bot-\x1b[31m-\u202e.yaml" if os.name != "nt" else "bot.yaml"
    (folder / name).write_text(json.dumps(manifest), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_a_hostile_manifest_cannot_reach_the_terminal_or_the_comment_raw(
    hostile_app: Path, capsys: pytest.CaptureFixture[str], output_format: str
) -> None:
    assert main(["plan", "--no-refresh", "--format", output_format]) == 0
    out = capsys.readouterr().out
    for raw in RAW:
        assert raw not in out
    assert "\\u202e" in out
    if output_format == "markdown":
        outside_code_blocks = strip_fenced_blocks(out)
        assert "<script>" not in outside_code_blocks and "<b>" not in outside_code_blocks
        assert "<script>" in out  # only inside the folded plan's code block, where it is text


def strip_fenced_blocks(markdown: str) -> str:
    """``markdown`` without its code (fenced blocks, inline spans): what GitHub would read as
    markup. A fence closes only with a run of backticks at least as long as its opener."""
    kept, fence = [], ""
    for line in markdown.splitlines():
        run = len(line) - len(line.lstrip("`"))
        if fence and run >= len(fence) and not line.strip("`").strip():
            fence = ""
        elif not fence and run >= 3:
            fence = "`" * run
        elif not fence:
            kept.append(re.sub(r"(`+)(.+?)\1", "", line))  # inline code is text too
    return "\n".join(kept)
