"""The apply-outcome comment (and job summary) on the merged pull request. Pure.

One row per app: applied / failed / not attempted counts, or why the app was refused, then,
per app, a line per bot the apply decided: what was made (created, updated, adopted, already
as declared, forgotten), what was refused, why and what to do, and what was left alone. An
app or a bot that was refused is never called applied. Found again by its marker (the exact
first line) and author, so a re-run edits it; every reason is escaped
(``render.safe.markdown_text``), so none can write a marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from provisioner.forge.comment import COMMENT_BUDGET, RunInfo
from provisioner.forge.wording import GITHUB, Wording
from provisioner.plan.reviewed import DONE, Reason
from provisioner.render.markdown import cut_markdown, markdown_code
from provisioner.render.safe import markdown_text
from provisioner.render.texts import DEFAULT_LANG, Lang, join, plural, tr

APPLY_MARKER = "<!-- provisioner:apply -->"


def apply_marker(shard: tuple[int, int] | None = None) -> str:
    """The outcome comment's marker: one comment per pull request, or per shard job of a
    sharded apply (``<!-- provisioner:apply shard=2/4 -->``), so shards never overwrite
    each other's outcome."""
    return (
        APPLY_MARKER if shard is None else f"<!-- provisioner:apply shard={shard[0]}/{shard[1]} -->"
    )


def say_reason(reason: Reason, lang: Lang = DEFAULT_LANG, wording: Wording = GITHUB) -> str:
    """A decision's ``reason`` in ``lang`` with ``wording``'s terms: the change made
    (``created``, ``updated; also a secret changed outside git: …``), what the outcome
    recorded, or why a bot was refused or left alone."""
    if reason.key in ("record", "forget", "done"):
        return tr(lang, f"outcome.{reason.key}")
    made = tr(lang, f"outcome.made.{reason.action}") if reason.action in _MADE else reason.action
    if reason.key == "made":
        return made
    return tr(
        lang,
        f"bot.{reason.key}",
        made=made,
        action=tr(lang, f"action.{reason.action}") if reason.action in _MADE else reason.action,
        fields=join(lang, (f"`{path}`" for path in reason.fields)),
        names=join(lang, reason.names),
        **wording.terms(lang),
    )


def say_hint(hint: str, lang: Lang = DEFAULT_LANG, wording: Wording = GITHUB) -> str:
    """What to do (a decision's ``hint`` key), in ``lang`` with ``wording``'s terms."""
    return tr(lang, f"bot.hint.{hint}", **wording.terms(lang))


@dataclass(frozen=True)
class BotOutcome:
    """What apply did with one bot: its decision (``outcome``: make, record, forget, done,
    refuse, leave), why (``reason``; ``hint``: what to do), and how its call ended
    (``result``: applied, failed, not_attempted; None when no change was carried out)."""

    user_id: str
    outcome: str
    reason: Reason = DONE
    hint: str | None = None
    result: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        """``✅ updated``, ``⛔ refused: … — what to do: …``, ``➖ left alone: …``."""
        return self.say(DEFAULT_LANG)

    def say(self, lang: Lang, wording: Wording = GITHUB) -> str:
        """:attr:`text` in ``lang``, in ``wording``'s terms."""
        hint = say_hint(self.hint, lang, wording) if self.hint else ""
        reason = say_reason(self.reason, lang, wording)
        if self.outcome == "refuse":
            key = "outcome.refused_hint" if hint else "outcome.refused"
            return tr(lang, key, reason=reason, hint=hint)
        if self.outcome == "leave":
            key = "outcome.left_hint" if hint else "outcome.left"
            return tr(lang, key, reason=reason, hint=hint)
        if self.result == "failed":
            return tr(lang, "outcome.failed", error=self.error or reason)
        if self.result == "not_attempted":
            return tr(lang, "outcome.not_attempted")
        return "✅ " + reason


_MADE = ("create", "update", "delete", "adopt")


@dataclass(frozen=True)
class AppOutcome:
    """What apply did to one app. ``counts`` has ``applied``, ``failed``,
    ``not_attempted``; ``refused`` says why nothing was tried; ``message`` is an error;
    ``bots`` the decision per bot, when the apply decided per bot."""

    app: str
    counts: Mapping[str, int] = field(default_factory=dict)
    refused: str | None = None
    message: str | None = None
    bots: Sequence[BotOutcome] = ()

    @property
    def refused_bots(self) -> int:
        return sum(1 for bot in self.bots if bot.outcome == "refuse")

    @property
    def result(self) -> str:
        return self.result_in(DEFAULT_LANG)

    def result_in(self, lang: Lang) -> str:
        """``✅ applied``, ``⚠️ partly applied (1 bot refused)``, ``⛔ refused`` …"""
        applied = self.counts.get("applied", 0)
        failed = self.counts.get("failed", 0) + self.counts.get("not_attempted", 0)
        if self.refused:
            return tr(lang, "outcome.app_refused")
        if self.message or failed:
            return tr(lang, "outcome.app_partly" if applied else "outcome.app_failed")
        if self.refused_bots:
            done = tr(lang, "outcome.app_partly" if applied else "outcome.app_refused")
            return plural(lang, "outcome.bots_refused", self.refused_bots, result=done)
        return tr(lang, "outcome.app_applied" if applied else "outcome.app_nothing")

    @property
    def ok(self) -> bool:
        return self.result.startswith("✅")


def render_apply_outcome(
    outcomes: Sequence[AppOutcome],
    run: RunInfo,
    *,
    limit: int = COMMENT_BUDGET,
    shard: tuple[int, int] | None = None,
    pending: str | None = None,
    lang: Lang = DEFAULT_LANG,
    wording: Wording = GITHUB,
) -> str:
    """The apply-outcome comment for ``outcomes`` (in the given order), within ``limit``;
    ``shard``: the comment of one shard job (its own marker and title); ``pending``: where
    the pending plan of what remains was posted."""
    bad = [outcome for outcome in outcomes if not outcome.ok]
    part = tr(lang, "outcome.shard", shard=shard[0], shards=shard[1]) if shard else ""
    done = len(outcomes) - len(bad)
    title = tr(lang, "outcome.title", part=part, done=done, count=len(outcomes))
    title += tr(lang, "outcome.attention", count=len(bad)) if bad else ""
    lines = [apply_marker(shard), title, ""]
    if not outcomes:
        lines += [tr(lang, "outcome.nothing")]
    else:
        lines += [tr(lang, "outcome.table_header"), "|---|---|---|---|---|---|"]
        lines += [_row(outcome, lang) for outcome in outcomes]
        bots = [line for outcome in outcomes for line in _bot_lines(outcome, lang, wording)]
        lines += ["", *bots] if bots else []
    terms = wording.terms(lang)
    if pending:
        lines += ["", tr(lang, "outcome.pending", url=pending, **terms)]
    footer = tr(lang, "outcome.footer", sha=run.head_sha[:12], url=run.run_url, **terms)
    body = "\n".join(lines).rstrip("\n") + "\n"
    return cut_markdown(body, limit - len(footer), tr(lang, "outcome.cut", **terms)) + footer


def _row(outcome: AppOutcome, lang: Lang) -> str:
    counts = outcome.counts
    why = outcome.refused or outcome.message or ""
    cells = (
        markdown_code(outcome.app),
        outcome.result_in(lang),
        str(counts.get("applied", 0)),
        str(counts.get("failed", 0)),
        str(counts.get("not_attempted", 0)),
        markdown_text(" ".join(why.split())),
    )
    return "| " + " | ".join(cells) + " |"


def _bot_lines(outcome: AppOutcome, lang: Lang, wording: Wording) -> list[str]:
    if not outcome.bots:
        return []
    lines = [f"**{markdown_code(outcome.app)}**", ""]
    lines += [
        f"- {markdown_code(bot.user_id)}: {_bot_text(bot, lang, wording)}" for bot in outcome.bots
    ]
    return [*lines, ""]


def _bot_text(bot: BotOutcome, lang: Lang, wording: Wording) -> str:
    """The bot's line, its reasons escaped like every value (field paths are user text)."""
    return markdown_text(_line(bot.say(lang, wording)))


def _line(text: str) -> str:
    return " ".join(text.split())
