"""What the loop's texts say about the forge they are posted on: its name, where the full
plan is, how a pending plan is applied, and its body limit. Everything else in a comment,
note or issue is the same on every forge."""

from __future__ import annotations

from dataclasses import dataclass

GITHUB_BODY_LIMIT = 65_536
"""GitHub's limit for a comment or issue body (code points)."""
GITLAB_NOTE_LIMIT = 1_000_000
"""GitLab's limit for a note body (characters; over it: 400)."""
GITLAB_DESCRIPTION_LIMIT = 1_048_576
"""GitLab's limit for an issue description (characters)."""


@dataclass(frozen=True)
class Wording:
    """The forge-specific words of the loop's texts (GitHub's by default)."""

    name: str = "GitHub"
    command: str = "github"
    """``provisioner COMMAND apply --pending N``."""
    run: str = "workflow run"
    """What the footer links to."""
    summary: str = "job summary"
    """Where the full plan is (``the full plan is in the …``)."""
    dispatch: str = "the dispatch workflow"
    """What a reviewer runs to apply a pending plan."""
    gate: str = "the protected environment"
    """Where a pending plan is applied (``in …``)."""
    approval: str = "the protected environment's approval"
    """What is the review of a pending plan (``… is the review of exactly these plans``)."""
    comment: str = "comment"
    body_limit: int = GITHUB_BODY_LIMIT - 536
    """What the renderers aim for: the forge's limit less a margin for how it counts."""
    issue_limit: int = GITHUB_BODY_LIMIT - 536


GITHUB = Wording()
GITLAB = Wording(
    name="GitLab",
    command="gitlab",
    run="pipeline job",
    summary="plan.md artifact",
    dispatch="the `apply-pending` manual job (variable `PROVISIONER_PENDING`)",
    gate="its protected manual job",
    approval="running that manual job (protected environment approvals on Premium)",
    comment="note",
    body_limit=GITLAB_NOTE_LIMIT - 1_000,
    issue_limit=GITLAB_DESCRIPTION_LIMIT - 1_000,
)
