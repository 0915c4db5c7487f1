"""The apply-outcome comment (and job summary) on the merged pull request. Pure.

One row per app: applied / failed / not attempted counts, or why the app was refused
(its fresh plan id differs from the reviewed one, no reviewed plan, blocked), with a link
to the run. Found again by its marker (the exact first line) and author, so a re-run edits
it; every reason is escaped (``render.safe.markdown_text``), so none can write a marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from provisioner.github.comment import COMMENT_BUDGET, RunInfo
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


_NOTE = (
    "\n> [!NOTE]\n> This comment was cut to fit GitHub's comment limit; the full outcome is "
    "in the job summary.\n"
)


@dataclass(frozen=True)
class AppOutcome:
    """What apply did to one app. ``counts`` has ``applied``, ``failed``,
    ``not_attempted``; ``refused`` says why nothing was tried; ``message`` is an error."""

    app: str
    counts: Mapping[str, int] = field(default_factory=dict)
    refused: str | None = None
    message: str | None = None

    @property
    def result(self) -> str:
        applied = self.counts.get("applied", 0)
        failed = self.counts.get("failed", 0) + self.counts.get("not_attempted", 0)
        if self.refused:
            return "⛔ refused"
        if self.message or failed:
            return "⚠️ partly applied" if applied else "❌ failed"
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
) -> str:
    """The apply-outcome comment for ``outcomes`` (in the given order), within ``limit``;
    ``shard``: the comment of one shard job (its own marker and title)."""
    bad = [outcome for outcome in outcomes if not outcome.ok]
    part = f" (shard {shard[0]} of {shard[1]})" if shard else ""
    title = (
        f"## provisioner apply{part}: {len(outcomes) - len(bad)} of {len(outcomes)} apps done"
        + (f", {len(bad)} need attention" if bad else "")
    )
    lines = [apply_marker(shard), title, ""]
    lines += [
        "| App | Result | Applied | Failed | Not attempted | Why |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_row(outcome) for outcome in outcomes]
    footer = (
        f"\n---\nApplied `{run.head_sha[:12]}` · [workflow run]({run.run_url}) · state "
        "records exactly what was applied\n"
    )
    body = "\n".join(lines) + "\n"
    return cut_markdown(body, limit - len(footer), _NOTE) + footer


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
