"""What reviewers read, in their language: one catalog of templates, English and Chinese.

Every text that lands on a pull request, an issue or a job summary (the plan comment, the
apply outcome, the pending plan, the drift issue, the summaries) is a template here, keyed
the same in :mod:`.en` and :mod:`.zh_cn`, with ``{name}`` placeholders filled by
:func:`tr`; ``tests/test_texts.py`` keeps both catalogs in step (same keys, same
placeholders). The few words that differ between forges (where the full plan is, what a
comment and a review are called, how a pending plan is applied) are each forge's ``TERMS``
(:data:`FORGE_TERMS`), passed into the templates as placeholders (``{comment}``,
``{ci_summary}``, ``{ci_run}``…; ``provisioner.forge.wording`` picks them). The CLI's own messages
stay English, like kubectl's. Markers, hidden data blocks, field paths and names are never
translated: a plan posted in Chinese is applied as one posted in English.

:class:`Lang` and :func:`lang_from_env` (``PROVISIONER_LANG``) are the one language setting
of every renderer (notifications included). Pure: the environment is passed in.
"""

from __future__ import annotations

import string
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


FORGE_TERMS: Mapping[Lang, Mapping[str, Mapping[str, str]]] = {
    Lang.EN: en.TERMS,
    Lang.ZH_CN: zh_cn.TERMS,
}
"""Each forge's words (``github``, ``gitlab``) in each language; same forges and names."""
SPACED = frozenset({"forge", *en.TERMS["github"]})
"""The placeholders of forge words: set off by a space from a Chinese character they touch
when their edge is Latin (``为符合{forge}的`` is ``为符合 GitHub 的``), as Chinese writes an
English word; nothing else of a template or a value is respaced."""
_FORMATTER = string.Formatter()


def forge_terms(lang: Lang, forge: str) -> Mapping[str, str]:
    """The words of ``forge`` in ``lang`` (the placeholders of :data:`SPACED` but ``forge``)."""
    return FORGE_TERMS[lang][forge]


def tr(lang: Lang, key: str, **values: object) -> str:
    """The template ``key`` in ``lang`` with its placeholders filled (values are inserted as
    given: escape what a manifest or a server controls first)."""
    template = CATALOGS[lang][key]
    if SPACED.isdisjoint(values):
        return template.format(**values)
    return _fill(template, values)


def _fill(template: str, values: Mapping[str, object]) -> str:
    """``template.format(**values)``, with the forge words spaced as :data:`SPACED` says."""
    pieces = list(_FORMATTER.parse(template))
    out: list[str] = []
    for index, (literal, name, spec, conversion) in enumerate(pieces):
        out.append(literal)
        if name is None:
            continue
        value = _FORMATTER.convert_field(_FORMATTER.get_field(name, (), values)[0], conversion)
        text = _FORMATTER.format_field(value, spec or "")
        if name in SPACED:
            before = "".join(out)[-1:]
            after = pieces[index + 1][0][:1] if index + 1 < len(pieces) else ""
            text = _spaced(before, text, after)
        out.append(text)
    return "".join(out)


def _spaced(before: str, text: str, after: str) -> str:
    if _han(before) and _latin(text[:1]):
        text = " " + text
    if _latin(text[-1:]) and _han(after):
        text += " "
    return text


def _han(char: str) -> bool:
    return bool(char) and ("\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf")


def _latin(char: str) -> bool:
    return bool(char) and char.isascii() and not char.isspace()


def plural(lang: Lang, key: str, count: int, **values: object) -> str:
    """``key.one`` for a count of 1, else ``key.other``; ``{count}`` is filled in too."""
    return tr(lang, f"{key}.{'one' if count == 1 else 'other'}", count=count, **values)


def join(lang: Lang, items: Iterable[str]) -> str:
    """Items of a list as the language writes them (``a, b`` / ``a、b``)."""
    return tr(lang, "list.separator").join(items)
