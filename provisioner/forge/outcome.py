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
from provisioner.render.markdown import cut_markdown, markdown_code
from provisioner.render.safe import markdown_text

APPLY_MARKER = "<!-- provisioner:apply -->"


def apply_marker(shard: tuple[int, int] | None = None) -> str:
    """The outcome comment's marker: one comment per pull request, or per shard job of a
    sharded apply (``<!-- provisioner:apply shard=2/4 -->``), so shards never overwrite
    each other's outcome."""
    return (
        APPLY_MARKER if shard is None else f"<!-- provisioner:apply shard={shard[0]}/{shard[1]} -->"
    )


def _note(wording: Wording) -> str:
    return (
        f"\n> [!NOTE]\n> This {wording.comment} was cut to fit {wording.name}'s {wording.comment}"
        f" limit; the full outcome is in the {wording.summary}.\n"
    )


_MADE = {"create": "created", "update": "updated", "delete": "deleted", "adopt": "adopted"}


@dataclass(frozen=True)
class BotOutcome:
    """What apply did with one bot: its decision (``outcome``: make, record, forget, done,
    refuse, leave), why, what to do, and how its call ended (``result``: applied, failed,
    not_attempted; None when no change was carried out)."""

    user_id: str
    outcome: str
    reason: str = ""
    hint: str | None = None
    result: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        """``✅ updated``, ``⛔ refused: … — what to do: …``, ``➖ left alone: …``."""
        if self.outcome == "refuse":
            return f"⛔ refused: {self.reason}" + (
                f" — **what to do:** {self.hint}" if self.hint else ""
            )
        if self.outcome == "leave":
            return f"➖ left alone: {self.reason}" + (f" — {self.hint}" if self.hint else "")
        if self.result == "failed":
            return f"❌ failed: {self.error or self.reason}"
        if self.result == "not_attempted":
            return "⏸ not attempted (the apply stopped first): re-run it"
        return "✅ " + self._done()

    def _done(self) -> str:
        if self.outcome == "record":
            return "already as declared on the server (recorded, no call)"
        if self.outcome == "forget":
            return "already gone from the server (forgotten from the state, no call)"
        if self.outcome == "done":
            return "nothing to do (already as declared)"
        action, _, rest = self.reason.partition(";")
        made = _MADE.get(action.strip(), action.strip())
        if made == "adopted":
            made = "adopted (the server already held it as declared; no call)"
        return made + (f";{rest}" if rest else "")


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
        applied = self.counts.get("applied", 0)
        failed = self.counts.get("failed", 0) + self.counts.get("not_attempted", 0)
        if self.refused:
            return "⛔ refused"
        if self.message or failed:
            return "⚠️ partly applied" if applied else "❌ failed"
        if self.refused_bots:
            noun = "bot" if self.refused_bots == 1 else "bots"
            done = "⚠️ partly applied" if applied else "⛔ refused"
            return f"{done} ({self.refused_bots} {noun} refused)"
        return "✅ applied" if applied else "✅ nothing to do"

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
    wording: Wording = GITHUB,
) -> str:
    """The apply-outcome comment for ``outcomes`` (in the given order), within ``limit``;
    ``shard``: the comment of one shard job (its own marker and title); ``pending``: where
    the pending plan of what remains was posted."""
    bad = [outcome for outcome in outcomes if not outcome.ok]
    part = f" (shard {shard[0]} of {shard[1]})" if shard else ""
    title = (
        f"## provisioner apply{part}: {len(outcomes) - len(bad)} of {len(outcomes)} apps done"
        + (f", {len(bad)} need attention" if bad else "")
    )
    lines = [apply_marker(shard), title, ""]
    if not outcomes:
        lines += ["This merge changed no bot: nothing to apply."]
    else:
        lines += [
            "| App | Result | Applied | Failed | Not attempted | Why |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_row(outcome) for outcome in outcomes]
        bots = [line for outcome in outcomes for line in _bot_lines(outcome)]
        lines += ["", *bots] if bots else []
    if pending:
        lines += [
            "",
            f"**What remains** is in the pending plan {pending}: a reviewer applies it with"
            f" {wording.dispatch} (`{wording.command} apply --pending N`, in {wording.gate}).",
        ]
    footer = (
        f"\n---\nMerge commit `{run.head_sha[:12]}` · [{wording.run}]({run.run_url}) · the state"
        " records exactly what was applied\n"
    )
    body = "\n".join(lines).rstrip("\n") + "\n"
    return cut_markdown(body, limit - len(footer), _note(wording)) + footer


def _row(outcome: AppOutcome) -> str:
    counts = outcome.counts
    why = outcome.refused or outcome.message or ""
    cells = (
        markdown_code(outcome.app),
        outcome.result,
        str(counts.get("applied", 0)),
        str(counts.get("failed", 0)),
        str(counts.get("not_attempted", 0)),
        markdown_text(" ".join(why.split())),
    )
    return "| " + " | ".join(cells) + " |"


def _bot_lines(outcome: AppOutcome) -> list[str]:
    if not outcome.bots:
        return []
    lines = [f"**{markdown_code(outcome.app)}**", ""]
    lines += [f"- {markdown_code(bot.user_id)}: {_bot_text(bot)}" for bot in outcome.bots]
    return [*lines, ""]


def _bot_text(bot: BotOutcome) -> str:
    """The bot's line, its reasons escaped like every value (field paths are user text)."""
    return markdown_text(_line(bot.text))


def _line(text: str) -> str:
    return " ".join(text.split())
