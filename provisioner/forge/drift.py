"""The drift issue: one per repository, its body rewritten whole each run. Pure.

The body is a per-app table (what drifted: bots changed or missing on the server, bots on
the server that nobody manages, changes in git not applied yet; and since when), a list of
apps that could not be checked, a link to the run, and a hidden data block
``<!-- provisioner:drift-data {"version": 1, "since": {app: timestamp}} -->`` so that the
next run keeps each app's "since". The issue is found by its marker, the body's exact first
line; every value shown is escaped (``render.safe``), so none can write a marker.

It also makes the drift record each app's store keeps (:func:`drift_record`): what the run
saw per bot, which pull-request plans show (:mod:`provisioner.forge.seen`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from provisioner.errors import ConfigError
from provisioner.forge.comment import (
    COMMENT_BUDGET,
    AppFailure,
    encode_data_block,
    read_hidden_block,
)
from provisioner.forge.wording import GITHUB, Wording
from provisioner.plan.document import PlanDoc
from provisioner.render.markdown import cut_markdown, markdown_code, render_markdown
from provisioner.render.safe import markdown_text
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr
from provisioner.state.drift_record import MAX_FIELDS, BotSeen, DriftRecord

DRIFT_MARKER = "<!-- provisioner:drift -->"
DRIFT_DATA_PREFIX = "<!-- provisioner:drift-data "
DRIFT_LABEL = "provisioner-drift"
DRIFT_TITLE = tr(DEFAULT_LANG, "drift.issue_title")
_SHOWN_NAMES = 10


@dataclass(frozen=True)
class DriftReport:
    """One drift check: plan documents made with a refresh, the apps that could not be
    checked, the run's page and the time of the check (ISO 8601, UTC)."""

    docs: Sequence[PlanDoc]
    failures: Sequence[AppFailure] = ()
    run_url: str = ""
    now: str = ""
    sha: str = ""
    """The commit the check planned at (the pending plan's)."""


@dataclass(frozen=True)
class DriftEntry:
    """One app that differs from git: ``drifted`` (bots changed or missing on the server),
    ``unmanaged`` (on the server, not managed), ``pending`` (changes not applied)."""

    app: str
    drifted: tuple[str, ...]
    unmanaged: tuple[str, ...]
    pending: int
    since: str


class DriftData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    version: int = 1
    since: dict[str, str]
    sha: str = ""
    """The commit the drift run planned at."""
    pending: dict[str, str] = {}
    """app → the plan id of its pending plan: the revert of its drift (and any change of git
    not applied yet), what ``github apply --pending <this issue>`` applies."""


def drift_entries(
    docs: Sequence[PlanDoc], previous_since: Mapping[str, str], now: str
) -> list[DriftEntry]:
    """An entry per plan document (made with a refresh) that differs from git; ``since`` is
    the previous run's for an app still drifting, else ``now``."""
    entries = []
    for doc in docs:
        drifted = tuple(item["user_id"] for item in doc["drift"])
        unmanaged = tuple(doc["unmanaged"])
        pending = len(doc["changes"])
        if drifted or unmanaged or pending:
            since = previous_since.get(doc["app"], now)
            entries.append(DriftEntry(doc["app"], drifted, unmanaged, pending, since))
    return sorted(entries, key=lambda entry: entry.app)


def render_drift_issue(
    entries: Sequence[DriftEntry],
    failures: Sequence[AppFailure],
    *,
    run_url: str,
    checked_at: str,
    limit: int = COMMENT_BUDGET,
    kept_since: Mapping[str, str] | None = None,
    plans: Sequence[PlanDoc] = (),
    sha: str = "",
    lang: Lang = DEFAULT_LANG,
    wording: Wording = GITHUB,
) -> str:
    """The whole issue body. ``kept_since`` carries the "since" of apps that could not be
    checked this time, so it is not lost; ``plans``: the plans of the apps that differ (made
    with the refresh at commit ``sha``), the pending plan ``github apply --pending`` applies."""
    since = {**(kept_since or {}), **{entry.app: entry.since for entry in entries}}
    shown = {entry.app for entry in entries}
    pending = {doc["app"]: doc["id"] for doc in plans if doc["app"] in shown}
    data = DriftData(since=since, sha=sha, pending=pending)
    block = encode_data_block(data, DRIFT_DATA_PREFIX)
    terms = wording.terms(lang)
    footer = tr(lang, "drift.footer", at=checked_at, url=run_url, **terms) + f"{block}\n"
    lines = [DRIFT_MARKER, _drift_title(entries, failures, lang), ""]
    if entries:
        lines += [tr(lang, "drift.table_header"), "|---|---|---|---|---|"]
        lines += [_row(entry, lang) for entry in entries]
        lines += ["", tr(lang, "drift.advice", **terms)]
    if failures:
        lines += ["", tr(lang, "drift.could_not_check"), ""]
        lines += [
            f"- {markdown_code(failure.app)}: {markdown_text(_line(failure.message))}"
            for failure in failures
        ]
    body = "\n".join(lines) + "\n"
    room = limit - len(footer)
    shown_plans = [doc for doc in plans if doc["app"] in shown]
    if shown_plans and len(body) < room:
        body += tr(lang, "drift.pending_heading")
        body += render_markdown(shown_plans, limit=max(room - len(body), 0), lang=lang)
    return cut_markdown(body, room, tr(lang, "drift.cut", **terms)) + footer


def drift_title(lang: Lang = DEFAULT_LANG) -> str:
    """The drift issue's title (the issue is found by its marker and label, not its title)."""
    return tr(lang, "drift.issue_title")


def _drift_title(entries: Sequence[DriftEntry], failures: Sequence[AppFailure], lang: Lang) -> str:
    if entries:
        return plural(lang, "drift.differ", len(entries))
    if failures:
        return tr(lang, "drift.unchecked", count=len(failures))
    return tr(lang, "drift.clean")


def _row(entry: DriftEntry, lang: Lang) -> str:
    cells = (
        markdown_code(entry.app),
        _names(entry.drifted, lang),
        _names(entry.unmanaged, lang),
        str(entry.pending) if entry.pending else "",
        markdown_text(entry.since),
    )
    return "| " + " | ".join(cells) + " |"


def _names(names: Sequence[str], lang: Lang) -> str:
    shown = join(lang, (markdown_code(name) for name in names[:_SHOWN_NAMES]))
    more = len(names) - _SHOWN_NAMES
    return tr(lang, "drift.more", names=shown, more=more) if more > 0 else shown


def _line(text: str) -> str:
    return " ".join(text.split())


def parse_drift_since(body: str) -> dict[str, str]:
    """Each app's "since" from a drift issue body written by :func:`render_drift_issue`;
    ``{}`` when the body has no data block; ConfigError when the block is malformed."""
    try:
        data = read_hidden_block(body, DRIFT_DATA_PREFIX, DriftData)
    except ValueError as exc:
        raise ConfigError(
            f"the drift issue's data block {exc}",
            hint="edit the issue's hidden block back, or close the issue to start afresh",
        ) from None
    return dict(data.since) if data is not None else {}


def drift_record(doc: PlanDoc, declared: Iterable[str], *, at: str, run: str | None) -> DriftRecord:
    """What a drift run saw of one app, from its plan made with a refresh and the userIds
    its manifests declare: ``drifted`` and ``missing`` from the plan's drift; ``unmanaged``
    for a bot on the server the state does not record (the plan's unmanaged bots and
    adoptions); ``in_sync`` for every other recorded bot (declared and not created, or
    deleted from git)."""
    new = {
        change["user_id"] for change in doc["changes"] if change["action"] in ("create", "adopt")
    }
    bots = {user_id: BotSeen("in_sync") for user_id in declared if user_id not in new}
    for change in doc["changes"]:
        if change["action"] == "delete":
            bots[change["user_id"]] = BotSeen("in_sync")
        elif change["action"] == "adopt":
            bots[change["user_id"]] = BotSeen("unmanaged")
    bots.update({user_id: BotSeen("unmanaged") for user_id in doc["unmanaged"]})
    for item in doc["drift"]:
        paths = tuple(dict.fromkeys(field["path"] for field in item["fields"]))[:MAX_FIELDS]
        if item["kind"] == "missing":
            bots[item["user_id"]] = BotSeen("missing")
        elif paths:
            bots[item["user_id"]] = BotSeen("drifted", paths)
    state = doc["state"]
    return DriftRecord(doc["app"], at, run, bots, state["lineage"], state["serial"])
