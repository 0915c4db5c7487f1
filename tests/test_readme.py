"""README.md and README.zh-CN.md stay in step: every section in the same place (a heading map),
the same command and YAML blocks (comments may be translated), tables of the same shape, the
same commands table and exit codes, the same documents linked, and each links to the other."""

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


HEADINGS = {
    "Install": "安装",
    "Start from bots you already have": "从已有的机器人开始",
    "What it is": "这是什么",
    "A manifest": "清单格式",
    "Where to find the App Key and App Secret": "在哪里找到 App Key 和 App Secret",
    "Commands": "命令",
    "Shell completion": "Shell 补全",
    "Exit codes": "退出码",
    "Secrets": "机密",
    "CI set-up (GitHub Actions)": "CI 配置（GitHub Actions）",
    "CI set-up (GitLab CI)": "CI 配置（GitLab CI）",
    "Notifications (DingTalk, Feishu/Lark, WeCom, webhooks)": (
        "通知（钉钉、飞书、企业微信、Webhook）"
    ),
    "Calibrate the emulator against your app": "用你的应用校准模拟器",
    "Documentation": "文档",
    "Development": "开发",
}
"""Every section of the English README and its counterpart in the Chinese one."""


def headings(text: str) -> list[tuple[int, str]]:
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    return [(len(m[1]), m[2]) for m in re.finditer(r"^(#{2,4}) (.+)$", outside_code, re.M)]


def sections(text: str) -> list[str]:
    return re.split(r"^#{2,4} .+$", re.sub(r"```.*?```", "```", text, flags=re.S), flags=re.M)


def table_shapes(section: str) -> list[tuple[int, int]]:
    tables = re.findall(r"(?:^\|.*\|\n)+", section, re.M)
    return [(len(t.splitlines()), t.splitlines()[0].count(" | ") + 1) for t in tables]


def test_every_section_has_its_counterpart_in_the_same_place() -> None:
    english = headings(ENGLISH)
    assert [title for _, title in english] == list(HEADINGS)  # the map covers every section
    assert headings(CHINESE) == [(level, HEADINGS[title]) for level, title in english]


def test_the_tables_have_the_same_shape_section_by_section() -> None:
    english = [table_shapes(section) for section in sections(ENGLISH)]
    assert sum(map(len, english)) >= 3
    assert [table_shapes(section) for section in sections(CHINESE)] == english
    paths = [cell.replace("、", ", ") for cell in first_column(CHINESE, "开发")]
    assert paths == first_column(ENGLISH, "Development")


def test_the_yaml_blocks_are_the_same_but_for_comments() -> None:
    assert command_blocks(CHINESE, "yaml") == command_blocks(ENGLISH, "yaml")


def test_every_document_the_english_readme_links_is_linked_in_chinese() -> None:
    def links(text: str) -> set[str]:
        return set(re.findall(r"\]\(((?:docs|examples|requirements)/[^)#]*)", text))

    assert links(ENGLISH) and links(ENGLISH) <= links(CHINESE)


def test_the_chinese_words_read_naturally() -> None:
    for awkward in ("替身", "金丝雀", "固定的计划评论", "固定评论"):
        assert awkward not in CHINESE
