"""Every text a notification carries, in English and in Chinese (RongCloud's own words:
应用 for an app, 机器人 for a bot, 配置漂移 for drift, 变更 for a change), and the two
shapes the targets post: markdown lines (DingTalk, WeCom, the webhook's ``text``) and plain
lines with a link (Feishu's ``post``). One module, so a test can hold the two languages to
the same keys and the same placeholders. Pure.

Every title starts with ``provisioner``: a DingTalk or Feishu robot guarded by keywords
passes the message when ``provisioner`` is one of them (docs/notify.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provisioner.notify.summary import Summary
from provisioner.render.safe import chat_link, chat_markdown_text, terminal_safe
from provisioner.render.texts import Lang

MAX_BOTS_SHOWN = 20
"""Bots named in one message; the rest are counted (WeCom takes 4,096 bytes of markdown)."""

TEMPLATES: Mapping[Lang, Mapping[str, str]] = {
    Lang.EN: {
        "title.drift": "provisioner: drift in app {app}",
        "title.apply": "provisioner: changes applied to app {app}",
        "title.failure": "provisioner: app {app} failed",
        "label.counts": "Counts",
        "label.bots": "Bots",
        "label.error": "Error",
        "label.run": "View the run",
        "label.pull": "Pull request #{number}",
        "label.merge_request": "Merge request !{number}",
        "label.issue": "Issue #{number}",
        "more": "and {count} more",
        "count.drifted": "{count} drifted",
        "count.unmanaged": "{count} unmanaged",
        "count.pending": "{count} pending",
        "count.applied": "{count} applied",
        "count.failed": "{count} failed",
        "count.not_attempted": "{count} not attempted",
        "count.refused": "{count} refused",
        "separator": ", ",
    },
    Lang.ZH_CN: {
        "title.drift": "provisioner：应用 {app} 发现配置漂移",
        "title.apply": "provisioner：应用 {app} 的变更已应用",
        "title.failure": "provisioner：应用 {app} 执行失败",
        "label.counts": "统计",
        "label.bots": "机器人",
        "label.error": "错误",
        "label.run": "查看运行记录",
        "label.pull": "拉取请求 #{number}",
        "label.merge_request": "合并请求 !{number}",
        "label.issue": "议题 #{number}",
        "more": "等另外 {count} 个",
        "count.drifted": "{count} 个配置漂移",
        "count.unmanaged": "{count} 个未纳管",
        "count.pending": "{count} 个变更待应用",
        "count.applied": "{count} 个已应用",
        "count.failed": "{count} 个失败",
        "count.not_attempted": "{count} 个未执行",
        "count.refused": "{count} 个被拒绝",
        "separator": "，",
    },
}


def text(lang: Lang, key: str, **values: object) -> str:
    """The template ``key`` in ``lang``, filled."""
    return TEMPLATES[lang][key].format(**values)


def title(summary: Summary, lang: Lang) -> str:
    """One line, plain text (control characters escaped)."""
    return terminal_safe(text(lang, f"title.{summary.event}", app=summary.app))


@dataclass(frozen=True)
class Line:
    """One line of a message: a label and its plain value (untrusted text left as it is)."""

    label: str
    value: str


@dataclass(frozen=True)
class Link:
    text: str
    url: str


def lines(summary: Summary, lang: Lang) -> list[Line]:
    """The message's facts: counts, bots, the error."""
    found = []
    if summary.counts:
        counts = [text(lang, f"count.{key}", count=n) for key, n in summary.counts]
        found.append(Line(text(lang, "label.counts"), text(lang, "separator").join(counts)))
    if summary.bots:
        shown = list(summary.bots[:MAX_BOTS_SHOWN])
        if len(summary.bots) > MAX_BOTS_SHOWN:
            shown.append(text(lang, "more", count=len(summary.bots) - MAX_BOTS_SHOWN))
        found.append(Line(text(lang, "label.bots"), text(lang, "separator").join(shown)))
    if summary.error:
        found.append(Line(text(lang, "label.error"), summary.error))
    return found


def links(summary: Summary, lang: Lang) -> list[Link]:
    """The run's page and the pull request, where known and well formed."""
    found = []
    if summary.pull_number is not None and summary.pull_url:
        url = chat_link(summary.pull_url)
        if url:
            label = text(lang, f"label.{summary.pull_kind}", number=summary.pull_number)
            found.append(Link(label, url))
    if summary.run_url:
        url = chat_link(summary.run_url)
        if url:
            found.append(Link(text(lang, "label.run"), url))
    return found


def markdown(summary: Summary, lang: Lang) -> str:
    """The message as chat markdown: a heading, one bullet per fact, the links. Every value
    from a manifest, a server or a pull request is :func:`chat_markdown_text`."""
    body = [f"### {chat_markdown_text(title(summary, lang))}", ""]
    body += [
        f"- **{line.label}**: {chat_markdown_text(line.value)}" for line in lines(summary, lang)
    ]
    found = links(summary, lang)
    if found:
        body += ["", " | ".join(f"[{link.text}]({link.url})" for link in found)]
    return "\n".join(body) + "\n"


def plain(summary: Summary, lang: Lang) -> list[str]:
    """The facts as plain one-line texts (Feishu's ``post`` shows text elements as typed)."""
    return [terminal_safe(f"{line.label}: {line.value}") for line in lines(summary, lang)]
