"""The review texts' catalog: every English template has a Chinese one with the same
placeholders, the language setting, and the Chinese outputs keeping what machines read."""

from __future__ import annotations

import string

import pytest

from provisioner.errors import ConfigError
from provisioner.forge.wording import GITHUB, GITLAB
from provisioner.render.texts import (
    CATALOGS,
    FORGE_TERMS,
    LANG_VARIABLE,
    SPACED,
    Lang,
    lang_from_env,
    parse_lang,
    plural,
    tr,
)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_language_has_every_key_of_the_english_catalog() -> None:
    english = set(CATALOGS[Lang.EN])
    for lang in Lang:
        assert set(CATALOGS[lang]) == english, lang


@pytest.mark.parametrize("key", sorted(CATALOGS[Lang.EN]))
def test_every_translation_has_the_placeholders_of_the_english_template(key: str) -> None:
    wanted = placeholders(CATALOGS[Lang.EN][key])
    for lang in Lang:
        assert placeholders(CATALOGS[lang][key]) == wanted, (lang, key)


def test_plural_keys_come_in_pairs() -> None:
    for key in CATALOGS[Lang.EN]:
        stem, _, form = key.rpartition(".")
        if form in ("one", "other"):
            assert {f"{stem}.one", f"{stem}.other"} <= set(CATALOGS[Lang.EN])


def test_the_chinese_texts_are_chinese_and_keep_the_markdown_shape() -> None:
    english, chinese = CATALOGS[Lang.EN], CATALOGS[Lang.ZH_CN]
    untranslated = [
        key
        for key, value in chinese.items()
        if value == english[key] and any(c.isalpha() for c in value.replace("{", "").strip())
    ]
    assert untranslated == []
    for key, value in english.items():  # same line structure, same alert blocks, same tables
        assert value.count("\n") == chinese[key].count("\n"), key
        assert value.count("|") == chinese[key].count("|"), key
        assert ("[!NOTE]" in value) == ("[!NOTE]" in chinese[key]), key


def test_tr_and_plural_fill_placeholders() -> None:
    assert tr(Lang.EN, "count.create", n=2) == "2 to create"
    assert tr(Lang.ZH_CN, "count.create", n=2) == "新建 2 个"
    assert plural(Lang.EN, "md.will_be_deleted", 1, names="`a`") == (
        "**1 bot will be deleted:** `a`"
    )
    assert plural(Lang.ZH_CN, "md.will_be_deleted", 2, names="`a`、`b`") == (
        "**将删除 2 个机器人：**`a`、`b`"
    )


@pytest.mark.parametrize(
    ("value", "lang"),
    [
        ("en", Lang.EN),
        ("EN-us", Lang.EN),
        ("zh-CN", Lang.ZH_CN),
        ("zh_cn", Lang.ZH_CN),
        ("zh", Lang.ZH_CN),
        ("zh-Hans", Lang.ZH_CN),
    ],
)
def test_parse_lang_understands_the_usual_tags(value: str, lang: Lang) -> None:
    assert parse_lang(value) is lang


def test_lang_from_env_defaults_to_english_and_names_a_bad_value() -> None:
    assert lang_from_env({}) is Lang.EN
    assert lang_from_env({LANG_VARIABLE: " "}) is Lang.EN
    assert lang_from_env({LANG_VARIABLE: "zh-CN"}) is Lang.ZH_CN
    with pytest.raises(ConfigError) as caught:
        lang_from_env({LANG_VARIABLE: "fr"})
    assert caught.value.message == "PROVISIONER_LANG: unknown language 'fr'"
    assert caught.value.hint == "choose one of en, zh-CN (English is the default)"


def test_every_forge_has_the_same_words_in_every_language() -> None:
    forges = FORGE_TERMS[Lang.EN]
    for lang in Lang:
        assert set(FORGE_TERMS[lang]) == set(forges), lang
        for forge, words in forges.items():
            assert set(FORGE_TERMS[lang][forge]) == set(words), (lang, forge)
    assert {"forge", *forges["github"]} == SPACED


def test_forge_words_are_placeholders_of_their_own() -> None:
    """A forge word's placeholder means nothing else in any template (``{summary}`` of a
    plan heading is not ``{ci_summary}``), so filling and spacing them touches only them."""
    for key, template in CATALOGS[Lang.EN].items():
        used = placeholders(template) & SPACED
        if used:
            assert placeholders(template) & {"summary", "run"} == set(), key


def test_a_latin_forge_word_is_spaced_from_chinese_and_nothing_else_is() -> None:
    github, gitlab = GITHUB.terms(Lang.ZH_CN), GITLAB.terms(Lang.ZH_CN)
    assert tr(Lang.ZH_CN, "drift.cut", **github) == (
        "\n> [!NOTE]\n> 为符合 GitHub 的 issue 长度限制，此表已截断；完整的漂移报告见本次运行的"
        "作业摘要。\n"
    )
    assert tr(Lang.ZH_CN, "drift.cut", **gitlab) == (
        "\n> [!NOTE]\n> 为符合 GitLab 的议题长度限制，此表已截断；完整的漂移报告见本次运行的"
        " plan.md 制品。\n"
    )
    assert tr(Lang.ZH_CN, "seen.alone_drift", **github) == "此次合并不会改动它；见漂移 issue"
    assert tr(Lang.ZH_CN, "seen.alone_drift", **gitlab) == "此次合并不会改动它；见漂移议题"
    assert tr(Lang.ZH_CN, "comment.stub", app="x", **gitlab) == "- x：已截断，见 plan.md 制品\n"
    assert tr(Lang.EN, "outcome.cut", **GITLAB.terms(Lang.EN)) == (
        "\n> [!NOTE]\n> This note was cut to fit GitLab's note limit; the full outcome is in the"
        " plan.md artifact.\n"
    )
