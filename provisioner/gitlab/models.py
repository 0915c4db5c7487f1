"""Typed results of the GitLab REST client: small pydantic models of the documented shapes
(unknown keys ignored), shaped for the forge-neutral core (:mod:`provisioner.forge.trust`):
``user`` is the author, ``text`` the body, ``login`` the username."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Shape):
    """A user (``GET /user``, a note's or an issue's ``author``); access-token bots have
    generated usernames (``project_<id>_bot…``), so trust goes by ``id``."""

    id: int
    username: str
    name: str = ""

    @property
    def login(self) -> str:
        return self.username


class Note(_Shape):
    """A note on a merge request or an issue; ``system`` notes are GitLab's own."""

    id: int
    body: str | None = ""
    author: User | None = None
    system: bool | None = False
    created_at: str = ""
    updated_at: str = ""
    noteable_iid: int | None = None

    @property
    def user(self) -> User | None:
        return self.author

    @property
    def text(self) -> str:
        return self.body or ""

    @property
    def html_url(self) -> str:
        return ""


class MergeRequest(_Shape):
    iid: int
    state: str
    sha: str | None = None
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None
    target_branch: str = ""
    source_project_id: int | None = None
    target_project_id: int | None = None
    web_url: str = ""

    def merged_as(self, sha: str) -> bool:
        """Merged, and ``sha`` is its merge commit, squash commit or (fast-forward) head."""
        made = (self.merge_commit_sha, self.squash_commit_sha, self.sha)
        return self.state == "merged" and sha in made


class Issue(_Shape):
    iid: int
    title: str = ""
    description: str | None = None
    state: str
    """``opened`` or ``closed``."""
    labels: list[str] = []
    author: User | None = None
    web_url: str = ""
    updated_at: str = ""

    @property
    def user(self) -> User | None:
        return self.author

    @property
    def text(self) -> str:
        return self.description or ""

    @property
    def html_url(self) -> str:
        return self.web_url

    @property
    def is_open(self) -> bool:
        return self.state == "opened"
