"""WeCom (企业微信) group robot: ``msgtype: markdown`` (``content``, at most 4,096 bytes),
POSTed to the robot's webhook address (its ``key`` is the only credential: there is no
signing). WeCom answers ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a refusal
(93000: invalid webhook url; 45009: more than 20 messages a minute; -1: system busy, retried
once). See docs/notify.md."""

from __future__ import annotations

from typing import Literal, TypedDict

import httpx

from provisioner.notify.messages import markdown
from provisioner.notify.summary import Summary
from provisioner.notify.target import Outgoing, Refusal, Resolved, coded_refusal, json_body
from provisioner.render.texts import Lang

MAX_BYTES = 4096
BUSY = frozenset({-1})


class Markdown(TypedDict):
    content: str


class Message(TypedDict):
    msgtype: Literal["markdown"]
    markdown: Markdown


def outgoing(target: Resolved, summary: Summary, lang: Lang, now: float) -> Outgoing:
    message = Message(msgtype="markdown", markdown=Markdown(content=fit(markdown(summary, lang))))
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return Outgoing(target.url, json_body(message), headers)


def fit(text: str) -> str:
    """``text`` cut at a line end to at most :data:`MAX_BYTES` bytes of UTF-8."""
    if len(text.encode("utf-8")) <= MAX_BYTES:
        return text
    kept: list[str] = []
    size = len("…\n".encode())
    for line in text.splitlines(keepends=True):
        size += len(line.encode("utf-8"))
        if size > MAX_BYTES:
            break
        kept.append(line)
    return "".join(kept) + "…\n"


def refusal(response: httpx.Response) -> Refusal | None:
    return coded_refusal(response, ("errcode",), ("errmsg",), BUSY)
