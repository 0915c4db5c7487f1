"""``type: webhook``: provisioner's own JSON document (:class:`Notification`, versioned by
``version``), POSTed to any address. With a ``secret`` the request carries
``X-Provisioner-Signature-256: sha256=<hex HMAC-SHA256 of the body keyed by the secret>``
(GitHub's webhook scheme), so the receiver can check it came from the run. Any 2xx is a
delivery. The document's shape is in docs/notify.md; its values are data as found (names
from manifests and servers: escape them where you show them), except ``text``, which is the
chat markdown the robots get, escaped already."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Literal, TypedDict

import httpx

from provisioner.models import NotifyEvent
from provisioner.notify.messages import markdown, title
from provisioner.notify.summary import Summary
from provisioner.notify.target import Outgoing, Refusal, Resolved, http_refusal, json_body
from provisioner.render.texts import Lang

SCHEMA: Literal["provisioner/notification"] = "provisioner/notification"
VERSION = 1
"""Raised when a field changes meaning or goes away; new fields keep the version."""
SIGNATURE_HEADER = "X-Provisioner-Signature-256"
EVENT_HEADER = "X-Provisioner-Event"


class PullRequestLink(TypedDict):
    number: int
    url: str


class Links(TypedDict):
    run: str | None
    pullRequest: PullRequestLink | None


class Notification(TypedDict):
    schema: Literal["provisioner/notification"]
    version: int
    event: NotifyEvent
    app: str
    counts: dict[str, int]
    bots: list[str]
    error: str | None
    links: Links
    lang: Lang
    title: str
    text: str
    sentAt: str


def document(summary: Summary, lang: Lang, now: float) -> Notification:
    pull = (
        PullRequestLink(number=summary.pull_number, url=summary.pull_url)
        if summary.pull_number is not None and summary.pull_url
        else None
    )
    sent = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Notification(
        schema=SCHEMA,
        version=VERSION,
        event=summary.event,
        app=summary.app,
        counts=dict(summary.counts),
        bots=list(summary.bots),
        error=summary.error,
        links=Links(run=summary.run_url, pullRequest=pull),
        lang=lang,
        title=title(summary, lang),
        text=markdown(summary, lang),
        sentAt=sent,
    )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def outgoing(target: Resolved, summary: Summary, lang: Lang, now: float) -> Outgoing:
    body = json_body(document(summary, lang, now))
    headers = {"Content-Type": "application/json; charset=utf-8", EVENT_HEADER: summary.event}
    if target.secret:
        headers[SIGNATURE_HEADER] = signature(target.secret, body)
    return Outgoing(target.url, body, headers)


def refusal(response: httpx.Response) -> Refusal | None:
    return http_refusal(response)
