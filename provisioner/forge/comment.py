"""The review's plan comment (a pull request's comment, a merge request's note): rendering,
its hidden data block, parsing, and trust.

Pure and forge-neutral: a comment is anything with an id, an author, a text, an address and a
time (:class:`Note`); the forge adapters (``github/``, ``gitlab/``) fetch and write them.
The comment, top to bottom::

    <!-- provisioner:plan -->              found by this marker (the exact first line) AND
                                           its author
    ## provisioner plan: ...               summary: blocked first, apps with changes, failed
    > [!CAUTION] Blocked by a safety rule   when blocked: which apps, why, how to lift it
    **Total:** ...                         totals
    > [!WARNING] ... will be deleted        deletion warning
    | App | Changes | Plan id |            one row per app with changes
    No changes: `a`, `b`                   apps without changes on one line
    <details> per app </details>           the app's section (render/plan.py), cut per app
    footer: head SHA, link to the run, where the full plan is
    <!-- provisioner:plan-data {...} -->   hidden machine-readable block, always last

The data block (``PlanData``) carries per app the plan id, state lineage and serial and the
changes as action + userId + changed field paths, plus the head SHA; ``<``, ``>`` and ``&``
are written as JSON ``\\u`` escapes, so no value can end the HTML comment, and so is every
character some reader takes for a line break (VT, FF, U+001C-U+001E, U+0085, U+2028, U+2029;
JSON escapes newlines itself), so the block stays the body's last line. The whole body
stays within :data:`COMMENT_BUDGET` code points (GitHub takes 65,536); the data block is
never cut: if the block with every change does not fit, it keeps the plan ids only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from provisioner.errors import PlanError, UnreviewedPlanError
from provisioner.forge.trust import carries_marker as carries_marker
from provisioner.forge.trust import pick_trusted as pick_trusted
from provisioner.forge.wording import GITHUB, Wording
from provisioner.plan.document import PlanDoc
from provisioner.plan.reviewed import BotReview
from provisioner.render.markdown import (
    MARKDOWN_MARKER,
    blocked_summary,
    blocked_title,
    cut_markdown,
    markdown_app_section,
    markdown_code,
)
from provisioner.render.plan import counts_summary, summary, total_counts
from provisioner.render.safe import markdown_text
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr

PLAN_MARKER = MARKDOWN_MARKER
"""``<!-- provisioner:plan -->``: the first line of the plan comment."""
DATA_PREFIX = "<!-- provisioner:plan-data "
DATA_SUFFIX = " -->"
DATA_VERSION = 2
"""2: a record per bot (change, field paths, the desired spec's digest, the manifest file)."""
COMMENT_BUDGET = GITHUB.body_limit
"""What the renderers aim for on GitHub (:data:`provisioner.forge.wording.GITHUB`)."""
DEFAULT_TRUSTED_LOGIN = "github-actions[bot]"
"""The identity the workflow's ``GITHUB_TOKEN`` writes as."""
_SHORT_ID = 12
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""What :meth:`str.splitlines` (and JavaScript, and browsers) may take for a line break."""
_BLOCK_ESCAPES = str.maketrans({char: f"\\u{ord(char):04x}" for char in "<>&" + _LINE_BREAKS})
_Block = TypeVar("_Block", bound=BaseModel)


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppFailure:
    """An app that could not be planned (or checked), with what to do."""

    app: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """Where the comment comes from: the run's web page and the commit planned."""

    run_url: str
    head_sha: str


# --- the hidden data block ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReviewedChange(_Strict):
    """One bot the plan showed a change for (see :mod:`provisioner.plan.reviewed`)."""

    action: str
    user_id: str
    fields: tuple[str, ...] = ()
    digest: str | None = None
    source: str | None = None

    @property
    def review(self) -> BotReview:
        return BotReview(self.user_id, self.action, self.fields, self.digest, self.source)


class ReviewedApp(_Strict):
    app: str
    plan_id: str
    lineage: str | None
    serial: int
    changes: tuple[ReviewedChange, ...] = ()

    @property
    def reviews(self) -> tuple[BotReview, ...]:
        return tuple(change.review for change in self.changes)


class PlanData(_Strict):
    """What the plan comment recorded for the apply job."""

    version: int = DATA_VERSION
    head_sha: str
    apps: tuple[ReviewedApp, ...]
    changes_omitted: bool = False
    """True when the changes were left out to keep the comment under GitHub's limit."""

    @property
    def plan_ids(self) -> dict[str, str]:
        return {app.app: app.plan_id for app in self.apps}


def plan_data(docs: Sequence[PlanDoc], head_sha: str) -> PlanData:
    """The data block's content for plan documents (``Plan.document``)."""
    apps = tuple(
        ReviewedApp(
            app=doc["app"],
            plan_id=doc["id"],
            lineage=doc["state"]["lineage"],
            serial=doc["state"]["serial"],
            changes=tuple(
                ReviewedChange(
                    action=change["action"],
                    user_id=change["user_id"],
                    fields=tuple(field["path"] for field in change["fields"]),
                    digest=change["digest"],
                    source=change["source"],
                )
                for change in doc["changes"]
            ),
        )
        for doc in docs
    )
    return PlanData(head_sha=head_sha, apps=apps)


def encode_data_block(data: BaseModel, prefix: str = DATA_PREFIX) -> str:
    """``<!-- provisioner:...-data {json} -->`` on one line: ``<``, ``>``, ``&`` and every
    line break character written as JSON ``\\uXXXX`` escapes (same value)."""
    text = json.dumps(data.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"{prefix}{text.translate(_BLOCK_ESCAPES)}{DATA_SUFFIX}"


def hidden_block(body: str, prefix: str) -> str | None:
    """The JSON text of the hidden block starting with ``prefix`` on the body's last line
    (where the renderers put it, after anything user-controlled); ``None`` without one.
    Lines end at ``\\n`` only, so a block that holds another line break character (one
    written before they were escaped) is still read whole."""
    last = body.rstrip().rpartition("\n")[2].strip()
    if not (last.startswith(prefix) and last.endswith(DATA_SUFFIX)):
        return None
    return last[len(prefix) : -len(DATA_SUFFIX)]


def read_hidden_block(body: str, prefix: str, model: type[_Block]) -> _Block | None:
    """The hidden block as ``model`` (``None`` without one); ValueError naming what is wrong
    (``not valid JSON``, ``has version N``, ``is malformed at PATH``)."""
    text = hidden_block(body, prefix)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError("is not valid JSON") from None
    version = model.model_fields["version"].default
    if isinstance(raw, dict) and raw.get("version") != version:
        raise ValueError(f"has version {raw.get('version')!r}, not {version}")
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"]) or "(top)"
        raise ValueError(f"is malformed at {where}") from None


def parse_plan_data(body: str) -> PlanData:
    """The :class:`PlanData` of a plan comment; UnreviewedPlanError when it has none or it
    cannot be read (never a crash)."""
    hint = "push a commit or re-run the plan job to write the plan comment again"
    try:
        data = read_hidden_block(body, DATA_PREFIX, PlanData)
    except ValueError as exc:
        if "version" in str(exc):
            hint = "plan and apply with the same provisioner version; " + hint
        raise UnreviewedPlanError(f"the plan comment's data block {exc}", hint=hint) from None
    if data is None:
        raise UnreviewedPlanError("the plan comment has no data block", hint=hint)
    return data


# --- rendering the plan comment ----------------------------------------------------------


def render_plan_comment(
    docs: Sequence[PlanDoc],
    run: RunInfo,
    failures: Sequence[AppFailure] = (),
    *,
    limit: int = COMMENT_BUDGET,
    notes: str = "",
    lang: Lang = DEFAULT_LANG,
    wording: Wording = GITHUB,
) -> str:
    """The sticky plan comment for plan documents and failed apps, within ``limit``;
    ``notes``: markdown after the summary (what the last drift run saw,
    :mod:`provisioner.forge.seen`; the new secrets, :mod:`provisioner.forge.secrets`)."""
    block = _fitting_data_block(docs, run.head_sha, limit)
    terms = wording.terms(lang)
    footer = tr(lang, "comment.footer", sha=run.head_sha[:_SHORT_ID], url=run.run_url, **terms)
    footer += block + "\n"
    head = _head(docs, failures, lang) + notes
    room = limit - len(footer)
    head = cut_markdown(head, room // 2 if _sectioned(docs) else room, _cut_note(None, lang, terms))
    sections = _fit_sections(docs, room - len(head), lang, terms)
    body = head + sections + footer
    if len(body) > limit:  # pragma: no cover - the budget above makes this unreachable
        raise PlanError("the plan comment does not fit GitHub's limit", hint="report this bug")
    return body


def _fitting_data_block(docs: Sequence[PlanDoc], head_sha: str, limit: int) -> str:
    data = plan_data(docs, head_sha)
    block = encode_data_block(data)
    if len(block) > limit // 2:  # a fleet: `github apply` never applies an unchanged app
        data = data.model_copy(update={"apps": tuple(app for app in data.apps if app.changes)})
        block = encode_data_block(data)
    if len(block) > limit // 2:
        bare = tuple(app.model_copy(update={"changes": ()}) for app in data.apps)
        block = encode_data_block(data.model_copy(update={"apps": bare, "changes_omitted": True}))
    if len(block) > limit - 2_000:
        raise PlanError(
            f"the plan ids of {len(docs)} apps do not fit in one pull-request comment",
            hint="split the apps over several plan workflows (e.g. by folder with the apps input)",
        )
    return block


def _sectioned(docs: Sequence[PlanDoc]) -> list[PlanDoc]:
    """The apps that get a section: anything to show beyond their plan id."""
    return [
        doc for doc in docs if doc["changes"] or doc["drift"] or doc["unmanaged"] or doc["blocked"]
    ]


def _head(docs: Sequence[PlanDoc], failures: Sequence[AppFailure], lang: Lang) -> str:
    shown = _sectioned(docs)
    lines = [PLAN_MARKER, _title(docs, shown, failures, lang), ""]
    lines += blocked_summary(shown, lang)
    if shown:
        lines += [tr(lang, "comment.total", counts=counts_summary(total_counts(shown), lang)), ""]
    lines += _deletion_warning(shown, lang)
    lines += failure_lines(failures, lang)
    if shown:
        lines += [tr(lang, "comment.table_header"), "|---|---|---|"]
        blocked = tr(lang, "comment.blocked")
        lines += [
            f"| {markdown_code(doc['app'])} | {blocked if doc['blocked'] else ''}"
            f"{summary(doc, lang)} | `{doc['id'][:_SHORT_ID]}` |"
            for doc in shown
        ]
        lines.append("")
    names = {doc["app"] for doc in shown}
    unchanged = [markdown_code(doc["app"]) for doc in docs if doc["app"] not in names]
    if unchanged:
        lines += [tr(lang, "md.no_changes", apps=join(lang, unchanged)), ""]
    return "\n".join(lines) + "\n"


def _title(
    docs: Sequence[PlanDoc],
    shown: Sequence[PlanDoc],
    failures: Sequence[AppFailure],
    lang: Lang,
) -> str:
    with_changes = tr(lang, "comment.with_changes", shown=len(shown), count=len(docs))
    parts = [with_changes if docs else tr(lang, "comment.none_planned")]
    if failures:
        parts.append(tr(lang, "comment.failed", count=len(failures)))
    return tr(lang, "comment.title", blocked=blocked_title(docs, lang), parts=join(lang, parts))


def _deletion_warning(shown: Sequence[PlanDoc], lang: Lang) -> list[str]:
    parts = []
    total = 0
    for doc in shown:
        deleted = [c["user_id"] for c in doc["changes"] if c["action"] == "delete"]
        total += len(deleted)
        if deleted:
            names = join(lang, (markdown_code(name) for name in deleted))
            parts.append(f"{markdown_code(doc['app'])} ({names})")
    if not total:
        return []
    warning = plural(lang, "md.will_be_deleted", total, names="; ".join(parts))
    return ["> [!WARNING]", f"> {warning}", ""]


def failure_lines(failures: Sequence[AppFailure], lang: Lang = DEFAULT_LANG) -> list[str]:
    """The apps that could not be planned, as a caution block (the comment and summary)."""
    if not failures:
        return []
    rows = [
        f"> - {markdown_code(failure.app)}: {markdown_text(_line(failure.message))}"
        + (f" (hint: {markdown_text(_line(failure.hint))})" if failure.hint else "")
        for failure in failures
    ]
    return ["> [!CAUTION]", f"> {tr(lang, 'comment.could_not_plan')}", *rows, ""]


def _line(text: str) -> str:
    return " ".join(text.split())


def _fit_sections(docs: Sequence[PlanDoc], room: int, lang: Lang, terms: Mapping[str, str]) -> str:
    """Every app's section folded in ``<details>``; when they do not all fit in ``room``,
    the small ones stay whole and the others share what is left, each cut with a note."""
    shown = _sectioned(docs)
    sections = {doc["app"]: _folded(doc, lang) for doc in shown}
    budgets = _budgets({app: len(text) for app, text in sections.items()}, room)
    out = []
    for app, text in sections.items():
        if len(text) <= budgets[app]:
            out.append(text)
            continue
        stub = tr(lang, "comment.stub", app=markdown_code(app), **terms)
        cut = cut_markdown(text, budgets[app], _cut_note(app, lang, terms))
        out.append(cut if len(cut) <= budgets[app] else stub if len(stub) <= budgets[app] else "")
    return "".join(out)


def _budgets(sizes: Mapping[str, int], room: int) -> dict[str, int]:
    """Water-filling: smallest first, each gets its size or an equal share of what is left."""
    budgets: dict[str, int] = {}
    left = max(0, room)
    order = sorted(sizes, key=lambda app: sizes[app])
    for index, app in enumerate(order):
        share = left // (len(order) - index)
        budgets[app] = min(sizes[app], share)
        left -= budgets[app]
    return budgets


def _folded(doc: PlanDoc, lang: Lang) -> str:
    blocked = f"<b>{_html(tr(lang, 'md.blocked_word'))}</b> — " if doc["blocked"] else ""
    title = f"<code>{_html(doc['app'])}</code>: {blocked}{_html(summary(doc, lang))}"
    section = markdown_app_section(doc, details=True, lang=lang)
    return f"<details><summary>{title}</summary>\n\n{section}\n</details>\n\n"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut_note(app: str | None, lang: Lang, terms: Mapping[str, str]) -> str:
    if app is None:
        return tr(lang, "comment.cut_summary", **terms)
    return tr(lang, "comment.cut_app", app=markdown_code(app), **terms)
