"""README.md and README.zh-CN.md stay in step: the same command blocks (comments may be
translated), the same commands table and exit codes, and each links to the other."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGLISH = (REPO / "README.md").read_text("utf-8")
CHINESE = (REPO / "README.zh-CN.md").read_text("utf-8")


def command_blocks(text: str, language: str) -> list[list[str]]:
    """The lines of every ```language block, without comments and blank lines."""
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    return [
        [
            re.sub(r"\s+#[^\"']*$", "", line).rstrip()
            for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        for block in blocks
    ]


def first_column(text: str, heading: str) -> list[str]:
    section = re.split(rf"^## {heading}\n", text, flags=re.M)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]


def test_the_shell_command_blocks_are_the_same() -> None:
    english = command_blocks(ENGLISH, "sh")
    assert len(english) == 6
    assert command_blocks(CHINESE, "sh") == english


def test_the_ci_recipe_is_the_same() -> None:
    ci = [block for block in command_blocks(ENGLISH, "yaml") if block[0].startswith("- run:")]
    assert ci and ci[0] in command_blocks(CHINESE, "yaml")


def test_the_commands_and_exit_codes_are_the_same() -> None:
    commands = first_column(ENGLISH, "Commands")
    assert len(commands) >= 14  # the table was read
    assert first_column(CHINESE, "命令") == commands
    assert first_column(CHINESE, "退出码") == first_column(ENGLISH, "Exit codes")


def test_each_links_to_the_other() -> None:
    assert "[中文说明 (Chinese)](README.zh-CN.md)" in ENGLISH.split("```")[0]
    assert "[English](README.md)" in CHINESE.split("```")[0]
