"""Feishu / Lark (飞书) custom bot: ``msg_type: post`` (rich text: a title, then lines of
``text`` and ``a`` elements, which Feishu shows as typed: no markup to escape), POSTed to the
bot's webhook address. With 签名校验 (signing), the body also carries ``timestamp`` (epoch
seconds, as a string) and ``sign`` = Base64(HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"``
over an empty message). Feishu answers ``{"code": 0, "msg": "success"}``; any other code is a
refusal (19021: sign match fail or timestamp not within one hour; 19022: IP not allowed;
19024: key words not found; 9499: bad request; 11232: rate limited). See docs/notify.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal, NotRequired, TypedDict

import httpx

from provisioner.notify.messages import links, plain, title
from provisioner.notify.summary import Summary
from provisioner.notify.target import Outgoing, Refusal, Resolved, coded_refusal, json_body
from provisioner.render.texts import Lang

LOCALES: dict[Lang, str] = {Lang.EN: "en_us", Lang.ZH_CN: "zh_cn"}
RATE_LIMITED = frozenset({11232})


class Element(TypedDict):
    tag: Literal["text", "a"]
    text: str
    href: NotRequired[str]


class PostBody(TypedDict):
    title: str
    content: list[list[Element]]


class Content(TypedDict):
    post: dict[str, PostBody]


class Message(TypedDict):
    msg_type: Literal["post"]
    content: Content
    timestamp: NotRequired[str]
    sign: NotRequired[str]


def sign(secret: str, timestamp: int) -> str:
    """The ``sign`` field: the key is ``"{timestamp}\\n{secret}"``, the message empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def outgoing(target: Resolved, summary: Summary, lang: Lang, now: float) -> Outgoing:
    rows: list[list[Element]] = [[Element(tag="text", text=line)] for line in plain(summary, lang)]
    found = links(summary, lang)
    if found:
        rows.append([Element(tag="a", text=link.text, href=link.url) for link in found])
    post = PostBody(title=title(summary, lang), content=rows)
    message = Message(msg_type="post", content=Content(post={LOCALES[lang]: post}))
    if target.secret:
        timestamp = int(now)
        message["timestamp"] = str(timestamp)
        message["sign"] = sign(target.secret, timestamp)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return Outgoing(target.url, json_body(message), headers)


def refusal(response: httpx.Response) -> Refusal | None:
    return coded_refusal(response, ("code", "StatusCode"), ("msg", "StatusMessage"), RATE_LIMITED)
