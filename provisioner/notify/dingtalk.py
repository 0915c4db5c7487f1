"""DingTalk (钉钉) custom robot: ``msgtype: markdown`` (``title`` shown in the chat list,
``text`` the message), POSTed to the robot's webhook address. With 加签 (signing), the
address also gets ``timestamp`` (epoch milliseconds) and ``sign`` = Base64(HMAC-SHA256 keyed
by the secret over ``"{timestamp}\\n{secret}"``), URL-encoded as query parameters. DingTalk
answers ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a refusal (310000: a
security setting refused it — sign not match, keywords not in content, IP not in the
allow-list; 130101: more than 20 messages a minute). See docs/notify.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal, TypedDict

import httpx

from provisioner.notify.messages import markdown, title
from provisioner.notify.summary import Summary
from provisioner.notify.target import Outgoing, Refusal, Resolved, coded_refusal, json_body
from provisioner.render.texts import Lang

BUSY = frozenset({-1})
"""errcode -1: 系统繁忙 (system busy), worth one retry."""


class Markdown(TypedDict):
    title: str
    text: str


class Message(TypedDict):
    msgtype: Literal["markdown"]
    markdown: Markdown


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter before URL-encoding."""
    text = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def outgoing(target: Resolved, summary: Summary, lang: Lang, now: float) -> Outgoing:
    message = Message(
        msgtype="markdown",
        markdown=Markdown(title=title(summary, lang), text=markdown(summary, lang)),
    )
    url = target.url
    if target.secret:
        timestamp = int(now * 1000)
        params = {"timestamp": str(timestamp), "sign": sign(target.secret, timestamp)}
        url = str(httpx.URL(url).copy_merge_params(params))
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return Outgoing(url, json_body(message), headers)


def refusal(response: httpx.Response) -> Refusal | None:
    return coded_refusal(response, ("errcode",), ("errmsg",), BUSY)
