"""Pending plans: what remains to apply after a refusal, for a reviewer to approve.

When `github apply` refuses a bot or an app, the job (which holds the credentials and a fresh
view of the server) plans those apps again and posts a **pending plan** on the merged pull
request: a comment by the trusted identity, first line ``<!-- provisioner:pending -->``, the
plans in full, and a hidden block with each app's plan id. The drift issue carries the same
block for the revert of each drifted app. ``github apply --pending N`` (the dispatch workflow,
in the protected environment whose approval is the review) applies the latest trusted
pending plan on pull request or issue N exactly, app by app, only where a fresh plan still
has its id; for any other app it makes no call and posts a new pending plan.

Pure and forge-neutral: the forge adapters fetch the comments and the issue
(``github.sync.find_pending``, ``gitlab.sync``) and hand them to :func:`latest_pending`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from provisioner.errors import UnreviewedPlanError
from provisioner.forge.comment import (
    COMMENT_BUDGET,
    RunInfo,
    encode_data_block,
    read_hidden_block,
)
from provisioner.forge.drift import DRIFT_DATA_PREFIX, DRIFT_MARKER, DriftData
from provisioner.forge.trust import Authored, Note, Trusted, is_trusted_author, pick_trusted
from provisioner.forge.wording import GITHUB, Wording
from provisioner.plan.document import PlanDoc
from provisioner.render.markdown import markdown_code, render_markdown
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr

PENDING_MARKER = "<!-- provisioner:pending -->"
PENDING_PREFIX = "<!-- provisioner:pending-data "
PENDING_VERSION = 1


class PendingData(BaseModel):
    """What a pending plan records: the commit it was planned at, app → plan id."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    version: int = PENDING_VERSION
    sha: str
    plan_ids: dict[str, str]


@dataclass(frozen=True)
class Pending:
    """The latest trusted pending plan on an issue or pull request, and where it is."""

    data: PendingData
    url: str


def pending_data(docs: Sequence[PlanDoc], sha: str) -> PendingData:
    return PendingData(sha=sha, plan_ids={doc["app"]: doc["id"] for doc in docs})


def render_pending_plan(
    docs: Sequence[PlanDoc],
    run: RunInfo,
    number: int,
    why: str,
    *,
    limit: int = COMMENT_BUDGET,
    lang: Lang = DEFAULT_LANG,
    wording: Wording = GITHUB,
) -> str:
    """The pending-plan comment for the apps of ``docs`` (``why``: what was refused), on
    pull request or issue ``number``."""
    block = encode_data_block(pending_data(docs, run.head_sha), PENDING_PREFIX)
    names = join(lang, (markdown_code(doc["app"]) for doc in docs))
    title = plural(lang, "pending.title", len(docs), names=names)
    intro = plural(lang, "pending.intro", len(docs), why=why)
    terms = wording.terms(lang)
    how = tr(lang, "pending.how", number=number, **terms)
    head = "\n".join([PENDING_MARKER, title, "", intro, "", how, ""])
    footer = tr(lang, "pending.footer", sha=run.head_sha[:12], url=run.run_url, **terms)
    footer += f"{block}\n"
    room = limit - len(head) - len(footer)
    return head + "\n" + render_markdown(docs, limit=max(room, 0), lang=lang) + footer


def parse_pending(body: str) -> PendingData | None:
    """The pending data of a comment body (None without one); UnreviewedPlanError when it
    cannot be read."""
    try:
        return read_hidden_block(body, PENDING_PREFIX, PendingData)
    except ValueError as exc:
        raise UnreviewedPlanError(
            f"the pending plan's data block {exc}",
            hint="re-run the apply or drift job that posted it, to post a new one",
        ) from None


class TrackedIssue(Authored, Protocol):
    """An issue as :func:`latest_pending` reads it (the drift issue carries a pending plan)."""

    @property
    def html_url(self) -> str: ...

    @property
    def updated_at(self) -> str: ...


def latest_pending(
    comments: Sequence[Note],
    issue: TrackedIssue | None,
    number: int,
    trusted: Trusted,
    who: str,
    wording: Wording = GITHUB,
) -> Pending:
    """The latest pending plan on issue or review ``number`` written by the trusted identity
    (``who`` names it): a pending-plan comment among ``comments``, or the drift issue's own
    body (``issue``). UnreviewedPlanError when there is none."""
    candidates: list[tuple[str, Pending]] = []
    picked = pick_trusted(comments, PENDING_MARKER, trusted)
    if picked.comment is not None:
        data = parse_pending(picked.comment.text)
        if data is not None:
            url = picked.comment.html_url or f"comment {picked.comment.id}"
            candidates.append((picked.comment.created_at, Pending(data, url)))
    first = issue.text.split("\n", 1)[0].strip() if issue is not None else ""
    if issue is not None and first == DRIFT_MARKER and is_trusted_author(issue, trusted):
        drift = _drift_pending(issue.text)
        if drift is not None:
            candidates.append((issue.updated_at, Pending(drift, issue.html_url or f"#{number}")))
    if not candidates:
        raise UnreviewedPlanError(
            f"#{number} has no pending plan by {who}",
            hint=f"a pending plan is posted by `{wording.command} apply` when it refuses"
            " something, and kept in the drift issue; give the number of that pull request or"
            " issue",
        )
    return max(candidates, key=lambda item: item[0])[1]


def _drift_pending(body: str) -> PendingData | None:
    try:
        drift = read_hidden_block(body, DRIFT_DATA_PREFIX, DriftData)
    except ValueError:
        return None
    if drift is None or not drift.pending:
        return None
    return PendingData(sha=drift.sha, plan_ids=dict(drift.pending))
