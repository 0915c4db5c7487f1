"""The git backend: ``<app>.json`` on a state branch of the manifests' repository.

``state: {backend: git, branch: provisioner-state, remote: origin}``. No infrastructure but
the repository: the branch holds the same JSON document as the file backend (so ``git log -p
provisioner-state`` is the state's history) and the lock record ``locks/<app>.json``. The
user's work tree and index are never touched (:mod:`provisioner.state.git.cli`).

* **Lock**: a holder record committed on the branch by a compare-and-swap push, with a lease
  the holder renews. A live record refuses a second run at once, naming its holder; one whose
  lease ended, or whose process is gone from this very machine, is taken over (said so in
  :meth:`GitBackend.notices`).
* **Write** (under the lock): the state is recorded durably on local disk at once (the journal,
  ``.provisioner/state-journal/<app>.json``, written atomically) and queued for the branch's
  worker (:mod:`provisioner.state.git.branch`), which pushes pending writes together, one push
  in flight. A failed push is :meth:`GitBackend.pending_error` (and the next write raises it).
* **Release**: pushes what is pending and removes the lock record in one commit; if that fails,
  the state goes to ``.provisioner/state-unsaved/<app>.json`` and the StateError's hint is the
  ``provisioner state push`` command.
* Without the lock (``state push`` takes it; tests do not), a write is one synchronous
  compare-and-swap push.
* **Drift record** (``drift/<app>.json``): written without the lock through the branch's
  worker, so the records of many apps written at once go in one push; read from a tip
  fetched at most :data:`RECORD_FRESHNESS` seconds before (the plan that just read the state
  fetched it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import StateConflictError, StateError
from provisioner.state.atomic import AtomicFile
from provisioner.state.backend import BackendKind, StateBackend, tell
from provisioner.state.codec import Fragments, parse_state, read_state_file, render_state
from provisioner.state.drift_record import DriftRecord, dumps_drift_record, parse_drift_record
from provisioner.state.git.branch import StateBranch
from provisioner.state.git.cli import GitError, GitRepository, access_hint
from provisioner.state.git.lease import (
    DEFAULT_LEASE,
    locked_error,
    parse_record,
    stale_reason,
)
from provisioner.state.git.records import Contents, drift_file, lock_file, state_file
from provisioner.state.holder import current_holder
from provisioner.state.model import LockHolder, RecordedApp
from provisioner.state.succession import check_request, check_stored, expected_serial_of
from provisioner.state.unsaved import persist_failure, save_unsaved

if TYPE_CHECKING:
    from provisioner.models import GitStateSettings

JOURNAL_DIR = Path(".provisioner") / "state-journal"
RECORD_FRESHNESS = 60.0
"""Seconds a fetched tip serves a drift record read: a record is advice, not a version."""

_BRANCHES: dict[tuple[Path, str, str], StateBranch] = {}
_BRANCHES_MUTEX = threading.Lock()


def shared_branch(repo: GitRepository, remote: str, branch: str) -> StateBranch:
    """This process's one :class:`StateBranch` for ``branch`` of ``remote`` in ``repo``."""
    with _BRANCHES_MUTEX:
        key = (repo.git_dir, remote, branch)
        found = _BRANCHES.get(key)
        if found is None:
            found = _BRANCHES[key] = StateBranch(repo, remote, branch, lease=DEFAULT_LEASE)
        return found


_REPOSITORIES: dict[Path, GitRepository] = {}


def repository_of(base_dir: Path) -> GitRepository:
    """The repository holding ``base_dir`` (looked up once per folder and process)."""
    key = base_dir.resolve()
    with _BRANCHES_MUTEX:
        found = _REPOSITORIES.get(key)
    if found is None:
        found = GitRepository.discover(base_dir)
        with _BRANCHES_MUTEX:
            _REPOSITORIES[key] = found
    return found


def push_count() -> int:
    """Pushes made by this process so far, over every state branch."""
    with _BRANCHES_MUTEX:
        return sum(branch.pushes for branch in _BRANCHES.values())


class GitBackend(StateBackend):
    """Recorded state of app ``app`` on ``branch`` (see the module docstring)."""

    kind: BackendKind = "git"

    def __init__(self, app: str, branch: StateBranch, *, base_dir: Path) -> None:
        self.app = app
        self.branch = branch
        self.base_dir = base_dir
        self.journal = AtomicFile(base_dir / JOURNAL_DIR / f"{app}.json")
        self._fragments: Fragments = {}
        self._locked = False
        self._latest: RecordedApp | None = None
        """Under the lock: the state as last written (or as found when locking)."""
        self._notices: list[str] = []
        self._reported: tuple[int, StateError] | None = None
        """The serial last saved locally after a failure, and the error naming it."""

    @classmethod
    def for_settings(cls, app: str, settings: GitStateSettings, base_dir: Path) -> GitBackend:
        repo = repository_of(base_dir)
        return cls(app, shared_branch(repo, settings.remote, settings.branch), base_dir=base_dir)

    def __repr__(self) -> str:
        return f"GitBackend(app={self.app!r}, branch={self.branch.branch!r})"

    def describe(self) -> str:
        return self.branch.where

    # --- reading ----------------------------------------------------------------------

    def read_recorded(self) -> RecordedApp | None:
        if self._locked:
            return self._latest
        _tip, contents = self._read([state_file(self.app)])
        return self._parse(contents[state_file(self.app)].content)

    def read_when_free(self, command: str) -> RecordedApp | None:
        """The state and the lock record from one fetch, taking no lock: a lock and its
        release are two commits, which an unchanged app need not add. A live record refuses,
        naming its holder; a dead one (lease ended, process gone) is taken over by the
        apply job that locks, which says so."""
        paths = [state_file(self.app), lock_file(self.app)]
        _tip, contents = self._read(paths)
        record = contents[lock_file(self.app)].content
        holder = parse_record(record) if record is not None else None
        if record is not None and stale_reason(holder, self.branch.clock()) is None:
            raise locked_error(self.app, holder)
        return self._parse(contents[state_file(self.app)].content)

    def _parse(self, document: bytes | None) -> RecordedApp | None:
        if document is None:
            return None
        where = f"{self.branch.where}: {state_file(self.app)}"
        state = parse_state(document, where)
        if state.app != self.app:
            raise StateError(
                f"{where}: this is the state of app {state.app}, not of app {self.app}",
                hint="restore the file on the branch from its history (git log -p)",
            )
        return state

    def _read(self, paths: list[str], fresh_within: float = 0.0) -> tuple[str | None, Contents]:
        try:
            return self.branch.read(paths, fresh_within=fresh_within)
        except GitError as exc:
            raise StateError(
                f"{self.branch.where}: cannot read the state branch: {exc.detail}",
                hint=access_hint(exc.detail, self.branch.branch, os.environ, push=False),
            ) from None

    # --- writing ----------------------------------------------------------------------

    def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
        expected = expected_serial_of(state, expected_serial)
        check_request(self.branch.where, self.app, state, expected)
        if not self._locked:
            self._swap(state, expected)
            return
        try:
            check_stored(self.branch.where, self._latest, state, expected)
        except StateConflictError as exc:
            kept = persist_failure(self.branch.where, state, self.base_dir, exc.message)
            raise kept from None
        document = render_state(state, self._fragments).encode("utf-8")
        self._journal(state, document)
        self._latest = state
        failure = self.branch.stage(self.app, document, state.serial)
        if failure is not None:
            raise self._kept(failure)

    def _journal(self, state: RecordedApp, document: bytes) -> None:
        """Record the write on local disk before it counts (fsync'd, atomic)."""
        try:
            self.journal.replace(document)
        except OSError as exc:
            raise StateError(
                f"{self.journal.path}: cannot record the state locally: {exc.strerror}",
                hint="check that .provisioner/ is writable; the call was applied, so re-run"
                " `provisioner apply` once it is (it reads the bots back)",
            ) from exc

    def _swap(self, state: RecordedApp, expected: int) -> None:
        """One compare-and-swap push, outside the lock."""
        path = state_file(self.app)
        document = render_state(state, self._fragments).encode("utf-8")

        def decide(contents: Contents) -> dict[str, bytes | None]:
            check_stored(self.branch.where, self._parse(contents[path].content), state, expected)
            return {path: document}

        message = f"provisioner: {self.app} serial {state.serial}\n"
        try:
            self.branch.swap(decide, [path], message)
        except GitError as exc:
            raise persist_failure(self.branch.where, state, self.base_dir, exc.detail) from None
        except StateConflictError:
            raise
        except StateError as exc:
            raise persist_failure(self.branch.where, state, self.base_dir, exc.message) from None

    # --- locking ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the app's lock record on the branch; the final push happens on release."""
        self._notices, self._reported = [], None
        acquired = self.branch.acquire(self.app, current_holder(command, self.app))
        for notice in acquired.notices:
            tell(self._notices, notice)
        try:
            self._latest = self._parse(acquired.document)
            self._check_journal()
        except BaseException:
            self.branch.release(self.app)
            raise
        self._locked = True
        self.journal.open()
        try:
            yield
        finally:
            self._locked = False
            self.journal.close()
            self._release()

    def _release(self) -> None:
        try:
            self.branch.release(self.app)
        except StateError as exc:
            if self._latest is not None:
                raise self._kept(exc) from None
            raise StateError(
                f"could not remove the lock of app {self.app} from {self.branch.where}:"
                f" {exc.message.split(': ', 1)[-1]}",
                hint=f"nothing was written; the lock record stays until its lease ends, or run"
                f" `provisioner state unlock {self.app}` once the remote takes pushes again",
            ) from None
        with contextlib.suppress(OSError):
            self.journal.path.unlink()

    def _check_journal(self) -> None:
        """A journal left by a run that stopped before its last push: keep what the branch
        lacks as an unsaved state (and say so); drop it otherwise."""
        try:
            raw = read_state_file(self.journal.path)
            left = parse_state(raw, str(self.journal.path)) if raw is not None else None
        except StateError:
            left = None
        if left is None:
            return
        current = self._latest
        if current is None or left.lineage != current.lineage or left.serial > current.serial:
            try:
                saved = save_unsaved(left, self.base_dir)
            except OSError:
                return
            tell(
                self._notices,
                f"app {self.app}: an earlier run stopped before storing serial {left.serial}"
                f" on {self.branch.where}; it is kept in {saved} (`provisioner state push"
                f" {self.app} {saved.as_posix()}` stores it; a refresh adopts its bots anyway)",
            )
        with contextlib.suppress(OSError):
            self.journal.path.unlink()

    def _kept(self, failure: StateError) -> StateError:
        """``failure`` with the latest state saved locally and the push command in the hint
        (saved again whenever a newer state was written since)."""
        state = self._latest or RecordedApp.fresh(self.app)
        reported = self._reported
        if reported is None or reported[0] != state.serial:
            reason = failure.message.split(": ", 1)[-1]
            reported = (
                state.serial,
                persist_failure(self.branch.where, state, self.base_dir, reason),
            )
            self._reported = reported
        return reported[1]

    def pending_error(self) -> StateError | None:
        failure = self.branch.error(self.app)
        return self._kept(failure) if failure is not None else None

    def notices(self) -> list[str]:
        return list(self._notices)

    # --- the drift record -------------------------------------------------------------

    def read_drift_record(self) -> DriftRecord | None:
        path = drift_file(self.app)
        _tip, contents = self._read([path], RECORD_FRESHNESS)
        content = contents[path].content
        if content is None:
            return None
        return parse_drift_record(content, f"{self.branch.where}: {path}", self.app)

    def write_drift_record(self, record: DriftRecord) -> None:
        self.branch.publish(drift_file(self.app), dumps_drift_record(record).encode("utf-8"))

    # --- the lock record, for `state show` and `state unlock` --------------------------

    def lock_holder(self) -> LockHolder | None:
        _tip, contents = self._read([lock_file(self.app)])
        record = contents[lock_file(self.app)].content
        return parse_record(record) if record is not None else None

    def is_locked(self) -> bool:
        _tip, contents = self._read([lock_file(self.app)])
        record = contents[lock_file(self.app)].content
        if record is None:
            return False
        return stale_reason(parse_record(record), self.branch.clock()) is None

    def unlock(self) -> LockHolder | None:
        """Remove the lock record from the branch (one compare-and-swap push)."""
        path = lock_file(self.app)
        found: list[LockHolder | None] = []

        def decide(contents: Contents) -> dict[str, bytes | None]:
            record = contents[path].content
            found[:] = [parse_record(record) if record is not None else None]
            return {path: None} if record is not None else {}

        try:
            self.branch.swap(decide, [path], f"provisioner: unlock {self.app}\n")
        except (GitError, StateError) as exc:
            detail = exc.detail if isinstance(exc, GitError) else exc.message
            raise StateError(
                f"cannot remove the lock of app {self.app} from {self.branch.where}: {detail}",
                hint=access_hint(detail, self.branch.branch, os.environ),
            ) from None
        return found[0] if found else None


__all__ = ["GitBackend", "push_count", "shared_branch"]
