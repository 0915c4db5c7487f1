"""The records the state branch's worker passes around (values; no git, no threads).

What is on the branch (:class:`Stored`, per path), what callers ask of the worker
(:class:`AcquireRequest`, :class:`PendingWrite`, releases, renewals, :class:`Published`
files), gathered in one :class:`Batch`, and what that batch changes on the tip
(:class:`Outcome`), which also gives the commit message. :mod:`provisioner.state.git.branch`
runs them.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from provisioner.errors import StateError
from provisioner.models import MANY_APPS
from provisioner.state.model import LockHolder


def state_file(app: str) -> str:
    return f"{app}.json"


def lock_file(app: str) -> str:
    return f"locks/{app}.json"


def drift_file(app: str) -> str:
    """The app's drift record (:mod:`provisioner.state.drift_record`)."""
    return f"drift/{app}.json"


@dataclass(frozen=True)
class Stored:
    """A path on the branch: its blob id and content (both None: absent)."""

    blob: str | None
    content: bytes | None


Contents = dict[str, Stored]
"""path -> what the branch holds there."""


@dataclass(frozen=True)
class Acquired:
    """A lock taken: the app's state blob and document at that commit, and what to say."""

    blob: str | None
    document: bytes | None
    notices: list[str]


@dataclass
class Held:
    """An app whose lock this process holds."""

    holder: LockHolder
    blob: str | None
    """Blob of ``<app>.json`` on the branch as this run last saw or pushed it."""
    renewed: float
    pending: bytes | None = None
    serial: int = 0
    """Serial of ``pending`` (for commit messages)."""
    generation: int = 0
    error: StateError | None = None


@dataclass(frozen=True)
class AcquireRequest:
    """A caller waiting for ``app``'s lock as ``holder``, on ``future``."""

    app: str
    holder: LockHolder
    future: Future[Acquired]


@dataclass(frozen=True)
class PendingWrite:
    """An app's next state document, as a batch pushes it."""

    document: bytes
    generation: int
    """:attr:`Held.generation` when taken: a write staged since is still pending after."""
    serial: int
    """Its serial (for the commit message)."""


@dataclass
class Published:
    """A file written outside any lock (a drift record: the last writer wins), and the
    callers waiting for its push (a later content for the same path replaces it)."""

    content: bytes
    futures: list[Future[None]]


@dataclass
class Batch:
    """Everything one push carries: lock requests, writes, releases, published files (each
    with the caller's future) and lease renewals."""

    acquires: list[AcquireRequest] = field(default_factory=list)
    writes: dict[str, PendingWrite] = field(default_factory=dict)
    releases: dict[str, Future[None]] = field(default_factory=dict)
    renewals: set[str] = field(default_factory=set)
    published: dict[str, Published] = field(default_factory=dict)
    """path -> the file to write there."""

    def has_work(self) -> bool:
        return bool(
            self.acquires or self.writes or self.releases or self.renewals or self.published
        )

    def apps(self) -> set[str]:
        """The apps held before this batch that it concerns (not those it acquires)."""
        return set(self.writes) | set(self.releases) | self.renewals


@dataclass(frozen=True)
class Grant:
    """A lock request granted: the record pushed (``leased``) and the caller's answer."""

    leased: LockHolder
    acquired: Acquired


@dataclass
class Outcome:
    """What a batch does on the current tip: the files it changes (None: removes), and per
    app the locks granted, refused, and held locks found lost."""

    changes: dict[str, bytes | None] = field(default_factory=dict)
    granted: dict[str, Grant] = field(default_factory=dict)
    refused: dict[str, StateError] = field(default_factory=dict)
    lost: dict[str, StateError] = field(default_factory=dict)


def commit_message(batch: Batch, outcome: Outcome) -> str:
    """``provisioner: lock demo for ...; demo serial 3; unlock other`` (or ``renew ...``).
    Beyond :data:`~provisioner.models.MANY_APPS` apps or files of a kind, that kind is a
    count (``lock 300 apps for ...``): a fleet's commit messages stay one short line."""
    granted = sorted(outcome.granted.items())
    writes = [
        f"{app} serial {w.serial}"
        for app, w in sorted(batch.writes.items())
        if app not in outcome.lost
    ]
    releases = [f"unlock {app}" for app in sorted(batch.releases) if app not in outcome.lost]
    published = [f"write {path}" for path in sorted(batch.published)]
    parts: list[str] = []
    if len(granted) > MANY_APPS:
        parts.append(f"lock {len(granted)} apps for {granted[0][1].leased.describe()}")
    else:
        parts += [f"lock {app} for {grant.leased.describe()}" for app, grant in granted]
    parts += writes if len(writes) <= MANY_APPS else [f"{len(writes)} state writes"]
    parts += releases if len(releases) <= MANY_APPS else [f"unlock {len(releases)} apps"]
    parts += published if len(published) <= MANY_APPS else [f"write {len(published)} files"]
    if not parts:
        renewals = sorted(batch.renewals)
        named = ", ".join(renewals) if len(renewals) <= MANY_APPS else f"{len(renewals)} apps"
        parts = ["renew " + named]
    return "provisioner: " + "; ".join(parts) + "\n"
