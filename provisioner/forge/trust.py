"""Which comments and issues to believe: a marker counts only as the exact first line of
what the trusted identity wrote. Pure and forge-neutral: a forge's adapter says who is
trusted, by login (GitHub) or by a predicate (GitLab: the token's own user id)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Author(Protocol):
    """Who wrote a comment or an issue, as a forge names them."""

    @property
    def login(self) -> str: ...


class Authored(Protocol):
    """A comment or an issue: who wrote it and its text."""

    @property
    def user(self) -> Author | None: ...

    @property
    def text(self) -> str: ...


class Note(Authored, Protocol):
    """A comment on a review or an issue (GitHub's issue comment, GitLab's note)."""

    @property
    def id(self) -> int: ...

    @property
    def html_url(self) -> str: ...

    @property
    def created_at(self) -> str: ...


Trust = Callable[[Authored], bool]
"""Whether a forge's adapter believes what an author wrote (GitLab: the token's own user id)."""
Trusted = str | Trust
"""A login (compared case-insensitively, GitHub's rule) or a :data:`Trust` predicate."""
_Note = TypeVar("_Note", bound=Note)


def carries_marker(text: str, marker: str) -> bool:
    """True when ``marker`` is the exact first line of ``text``, where the renderers put it,
    before anything a manifest controls; a marker anywhere else is only text. With
    :func:`is_trusted_author`, the one test of "this comment (or issue) is ours and of this
    kind"."""
    return text.partition("\n")[0].removesuffix("\r") == marker


@dataclass(frozen=True)
class TrustedComment(Generic[_Note]):
    """The comment to trust among those carrying a marker, and the ones ignored."""

    comment: _Note | None
    ignored: tuple[_Note, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return [ignored_warning(comment) for comment in self.ignored]


def is_trusted_author(item: Authored, trusted: Trusted) -> bool:
    """A login compares case-insensitively (GitHub's logins); a predicate decides itself."""
    if not isinstance(trusted, str):
        return trusted(item)
    return item.user is not None and item.user.login.lower() == trusted.lower()


def pick_trusted(
    comments: Sequence[_Note], marker: str, trusted_login: Trusted
) -> TrustedComment[_Note]:
    """The newest comment whose first line is ``marker`` written by ``trusted_login``; every
    other comment whose first line is the marker is ignored (reported, so the caller can
    warn)."""
    marked = [comment for comment in comments if carries_marker(comment.text, marker)]
    trusted = [comment for comment in marked if is_trusted_author(comment, trusted_login)]
    ignored = tuple(comment for comment in marked if not is_trusted_author(comment, trusted_login))
    chosen = max(trusted, key=lambda comment: comment.id) if trusted else None
    return TrustedComment(chosen, ignored)


def ignored_warning(comment: Note) -> str:
    author = comment.user.login if comment.user else "a deleted user"
    where = comment.html_url or f"comment {comment.id}"
    return (
        f"ignored {where} by {author}: it carries provisioner's marker, but only what the "
        "workflow's own identity writes is trusted"
    )
