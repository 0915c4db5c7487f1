"""What reviewers read, in their language: one catalog of templates, English and Chinese.

Every text that lands on a pull request, an issue or a job summary (the plan comment, the
apply outcome, the pending plan, the drift issue, the summaries) is a template here, keyed
the same in :mod:`.en` and :mod:`.zh_cn`, with ``{name}`` placeholders filled by
:func:`tr`; ``tests/test_texts.py`` keeps both catalogs in step (same keys, same
placeholders). The CLI's own messages stay English, like kubectl's. Markers, hidden data
blocks, field paths and names are never translated: a plan posted in Chinese is applied as
one posted in English.

:class:`Lang` and :func:`lang_from_env` (``PROVISIONER_LANG``) are the one language setting
of every renderer (notifications included). Pure: the environment is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from provisioner.errors import ConfigError
from provisioner.render.texts import en, zh_cn

LANG_VARIABLE = "PROVISIONER_LANG"
"""The environment variable (the Action's ``lang`` input) that chooses the language."""


class Lang(StrEnum):
    """A language of the review texts: its BCP 47 tag."""

    EN = "en"
    ZH_CN = "zh-CN"


DEFAULT_LANG = Lang.EN
CATALOGS: Mapping[Lang, Mapping[str, str]] = {Lang.EN: en.TEXTS, Lang.ZH_CN: zh_cn.TEXTS}
_ALIASES = {
    "en": Lang.EN,
    "en-us": Lang.EN,
    "en-gb": Lang.EN,
    "zh": Lang.ZH_CN,
    "zh-cn": Lang.ZH_CN,
    "zh-hans": Lang.ZH_CN,
    "zh-hans-cn": Lang.ZH_CN,
}


def parse_lang(value: str, *, where: str = LANG_VARIABLE) -> Lang:
    """``en`` or ``zh-CN`` (case and ``_``/``-`` do not matter; ``zh``, ``zh-Hans`` and
    ``en-US`` are understood); ConfigError naming ``where`` otherwise."""
    found = _ALIASES.get(value.strip().replace("_", "-").lower())
    if found is None:
        choices = ", ".join(lang.value for lang in Lang)
        raise ConfigError(
            f"{where}: unknown language {value!r}" if where else f"unknown language {value!r}",
            hint=f"choose one of {choices} (English is the default)",
        )
    return found


def lang_from_env(env: Mapping[str, str]) -> Lang:
    """The language ``PROVISIONER_LANG`` asks for; English when it is unset or empty."""
    value = env.get(LANG_VARIABLE, "")
    return parse_lang(value) if value.strip() else DEFAULT_LANG


def tr(lang: Lang, key: str, **values: object) -> str:
    """The template ``key`` in ``lang`` with its placeholders filled (values are inserted as
    given: escape what a manifest or a server controls first)."""
    return CATALOGS[lang][key].format(**values)


def plural(lang: Lang, key: str, count: int, **values: object) -> str:
    """``key.one`` for a count of 1, else ``key.other``; ``{count}`` is filled in too."""
    return tr(lang, f"{key}.{'one' if count == 1 else 'other'}", count=count, **values)


def join(lang: Lang, items: Iterable[str]) -> str:
    """Items of a list as the language writes them (``a, b`` / ``a、b``)."""
    return tr(lang, "list.separator").join(items)
