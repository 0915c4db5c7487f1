"""What the loop's texts say about the forge they are posted on: its name, its CLI command,
how it writes a review's number, its words in each language (the catalog's
``render.texts`` ``TERMS``: where the full plan is, how a pending plan is applied…) and its
body limits. Everything else in a comment, note or issue is the same on every forge."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.render.texts import Lang, forge_terms

GITHUB_BODY_LIMIT = 65_536
"""GitHub's limit for a comment or issue body (code points)."""
GITLAB_NOTE_LIMIT = 1_000_000
"""GitLab's limit for a note body (characters; over it: 400)."""
GITLAB_DESCRIPTION_LIMIT = 1_048_576
"""GitLab's limit for an issue description (characters)."""


@dataclass(frozen=True)
class Wording:
    """The forge-specific words of the loop's texts (GitHub's by default)."""

    forge: str = "github"
    """Its words' key in the catalog's ``TERMS``."""
    name: str = "GitHub"
    command: str = "github"
    """``provisioner COMMAND apply --pending N``."""
    ref: str = "#"
    """What a review's number is written after (``#12``, ``!12``)."""
    body_limit: int = GITHUB_BODY_LIMIT - 536
    """What the renderers aim for: the forge's limit less a margin for how it counts."""
    issue_limit: int = GITHUB_BODY_LIMIT - 536
    secrets_text: str = "secrets.new"
    """The catalog key of the plan's "new secrets" section: where this forge keeps the
    apply job's secrets (a sentence of its own, not a word)."""

    def terms(self, lang: Lang) -> dict[str, str]:
        """The values of the forge placeholders of the catalog's templates, in ``lang``."""
        words = dict(forge_terms(lang, self.forge))
        return {**words, "forge": self.name, "command": self.command, "ref": self.ref}


GITHUB = Wording()
GITLAB = Wording(
    forge="gitlab",
    name="GitLab",
    command="gitlab",
    ref="!",
    body_limit=GITLAB_NOTE_LIMIT - 1_000,
    issue_limit=GITLAB_DESCRIPTION_LIMIT - 1_000,
    secrets_text="secrets.new.gitlab",
)
