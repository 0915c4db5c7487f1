"""Typed results of the GitHub REST client: small pydantic models of GitHub's documented
shapes (unknown keys ignored) and ``Repo``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from provisioner.errors import ConfigError

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Repo:
    """``owner/name`` of a repository."""

    owner: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Repo:
        """``Repo`` from ``owner/name``; ConfigError otherwise."""
        if not _REPO_NAME.match(text):
            raise ConfigError(
                f"{text!r} is not a repository name of the form owner/name",
                hint="GITHUB_REPOSITORY is set by the runner, e.g. octo-org/bots",
            )
        owner, name = text.split("/")
        return cls(owner, name)

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Shape):
    """The author of a comment or issue (``user``)."""

    login: str
    type: str = "User"


class RepoRef(_Shape):
    full_name: str


class Branch(_Shape):
    """``head`` or ``base`` of a pull request; ``repo`` is null when a fork was deleted."""

    ref: str
    sha: str
    repo: RepoRef | None = None


class PullRequest(_Shape):
    number: int
    state: str
    html_url: str = ""
    head: Branch
    base: Branch
    merged_at: str | None = None
    merge_commit_sha: str | None = None

    @property
    def is_merged(self) -> bool:
        return self.merged_at is not None

    @property
    def is_from_fork(self) -> bool:
        """True when the head branch lives in another repository (or a deleted fork)."""
        head = self.head.repo.full_name if self.head.repo else None
        base = self.base.repo.full_name if self.base.repo else None
        return head is None or head.lower() != (base or "").lower()


class Comment(_Shape):
    id: int
    body: str | None = ""
    user: Account | None = None
    html_url: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def text(self) -> str:
        return self.body or ""


class Label(_Shape):
    name: str


class Issue(_Shape):
    number: int
    title: str
    body: str | None = None
    state: str
    labels: list[Label] = []
    user: Account | None = None
    html_url: str = ""
    updated_at: str = ""
    pull_request: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self.body or ""

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


@dataclass(frozen=True)
class RateLimit:
    """What the last answer said of the primary rate limit."""

    limit: int | None
    remaining: int | None
    reset: float | None
    resource: str | None
