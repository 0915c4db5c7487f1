"""The gitlab backend: GitLab-managed Terraform state, one state per app.

``state: {backend: gitlab}``: in GitLab CI nothing else is needed (project ``CI_PROJECT_ID``,
API ``CI_API_V4_URL``, state name = the app's name). The state's newest version is the same
JSON document as every backend stores; GitLab keeps every version (by its ``serial``).

* **Tokens**: the commands that only read (plan, drift, state show/pull) use ``CI_JOB_TOKEN``
  when the job has one (a plan job holds no secret), else ``PROVISIONER_GITLAB_TOKEN``; the
  commands that lock or write use ``PROVISIONER_GITLAB_TOKEN`` when it is set (a
  Maintainer-role token in a protected variable), else ``CI_JOB_TOKEN`` (the role of whoever
  started the pipeline: Maintainer to write).
* **Lock** = GitLab's state lock, whose ID is the holder's record (:mod:`.lockid`): a refused
  run names the holder, its job and pipeline. GitLab's lock never expires: a holder whose
  process is gone from this very machine is taken over (said so); any other stale lock is
  removed with ``provisioner state unlock APP --force``, which names it.
* **Write** (under the lock): compare-and-swap on the version read when locking (nobody else
  can write while GitLab holds our lock ID), then ``POST ?ID=<our lock>``; a 409 means the lock
  was removed or taken: the state goes to ``.provisioner/state-unsaved/<app>.json`` and the
  StateError's hint is the ``provisioner state push`` command. A write outside the lock takes
  the lock for itself.
* **Drift record**: a second state, ``<name>-drift-record``, written without a lock (the last
  writer wins) and never locked, so it is never in the way of an apply.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner import __version__
from provisioner.errors import ConfigError, LockedError, StateConflictError, StateError
from provisioner.state.backend import BackendKind, StateBackend, tell
from provisioner.state.codec import MAX_STATE_BYTES, Fragments, parse_state, render_state
from provisioner.state.drift_record import DriftRecord, dumps_drift_record, parse_drift_record
from provisioner.state.gitlab.api import GitLabStateApi, LockAnswer, TokenKind
from provisioner.state.gitlab.lockid import GitLabHolder, decode, encode
from provisioner.state.holder import current_holder, is_gone, utc_now
from provisioner.state.model import LockHolder, RecordedApp
from provisioner.state.succession import check_request, check_stored, expected_serial_of
from provisioner.state.unsaved import persist_failure

if TYPE_CHECKING:
    from provisioner.models import GitLabStateSettings

TOKEN_VARIABLE = "PROVISIONER_GITLAB_TOKEN"
JOB_TOKEN_VARIABLE = "CI_JOB_TOKEN"
DRIFT_SUFFIX = "-drift-record"
UNLOCKED_WRITE = "provisioner state write"
PROBE = "provisioner (looking at the lock)"


def token_for(env: Mapping[str, str], *, read_only: bool) -> tuple[str, TokenKind] | None:
    """The token a command uses (see the module docstring), None when there is none."""
    job, access = env.get(JOB_TOKEN_VARIABLE), env.get(TOKEN_VARIABLE)
    order: list[tuple[str | None, TokenKind]] = [(access, "access"), (job, "job")]
    for value, kind in reversed(order) if read_only else order:
        if value:
            return value, kind
    return None


def _setting(app: str, field: str, value: str | None, variable: str, env: Mapping[str, str]) -> str:
    found = value or env.get(variable)
    if not found:
        raise ConfigError(
            f"app {app}: state.{field} is not set, and neither is {variable}",
            hint=f"run in GitLab CI (which sets {variable}) or set state.{field} in app.yaml",
        )
    return found


class GitLabBackend(StateBackend):
    """Recorded state of app ``app`` in Terraform state ``name`` (see the module docstring)."""

    kind: BackendKind = "gitlab"

    def __init__(
        self, app: str, api: GitLabStateApi, name: str, *, base_dir: Path, pipeline: str | None
    ) -> None:
        self.app = app
        self.api = api
        self.name = name
        self.base_dir = base_dir
        self.pipeline = pipeline
        """This run's pipeline link (``CI_PIPELINE_URL``), written into the lock ID."""
        self.where = f"GitLab Terraform state {name} of project {api.project}"
        self._fragments: Fragments = {}
        self._lock_id: str | None = None
        self._latest: RecordedApp | None = None
        self._notices: list[str] = []
        self._probed: GitLabHolder | None = None
        """The last look at the lock (None: free), while :attr:`_looked`."""
        self._looked = False

    @classmethod
    def for_settings(
        cls,
        app: str,
        settings: GitLabStateSettings,
        base_dir: Path,
        env: Mapping[str, str] | None,
        *,
        read_only: bool = False,
    ) -> GitLabBackend:
        environ = os.environ if env is None else env
        api_url = _setting(app, "apiUrl", settings.apiUrl, "CI_API_V4_URL", environ)
        project = _setting(app, "project", settings.project, "CI_PROJECT_ID", environ)
        name = settings.name or app
        token = token_for(environ, read_only=read_only)
        if token is None:
            raise ConfigError(
                f"app {app}: the gitlab state needs a token: neither {TOKEN_VARIABLE} nor"
                f" {JOB_TOKEN_VARIABLE} is set",
                hint=f"in GitLab CI the job has {JOB_TOKEN_VARIABLE}; elsewhere set"
                f" {TOKEN_VARIABLE} (Developer role to read, Maintainer to lock and write)",
            )
        ca_file = settings.caBundle or environ.get("CI_SERVER_TLS_CA_FILE") or None
        if ca_file and not Path(ca_file).is_absolute():
            ca_file = str(base_dir / ca_file)
        api = GitLabStateApi(api_url, project, token[0], token[1], ca_file=ca_file)
        return cls(app, api, name, base_dir=base_dir, pipeline=environ.get("CI_PIPELINE_URL"))

    def __repr__(self) -> str:
        return f"GitLabBackend(app={self.app!r}, name={self.name!r})"

    def describe(self) -> str:
        return self.where

    # --- reading ----------------------------------------------------------------------

    def read_recorded(self) -> RecordedApp | None:
        if self._lock_id is not None:
            return self._latest
        return self._fetch()

    def _fetch(self) -> RecordedApp | None:
        document = self.api.get_state(self.name, f"cannot read the state of app {self.app}")
        if document is None:
            return None
        where = f"{self.where}, app {self.app}"
        if len(document) > MAX_STATE_BYTES:
            raise StateError(
                f"{where}: the stored document is over {MAX_STATE_BYTES} bytes; it is not a state",
                hint="restore an earlier version (Operate > Terraform states); provisioner will"
                " not overwrite it",
            )
        state = parse_state(document, where)
        if state.app != self.app:
            raise StateError(
                f"{where}: this is the state of app {state.app}",
                hint="set state.name of each app to a state of its own",
            )
        return state

    # --- writing ----------------------------------------------------------------------

    def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
        expected = expected_serial_of(state, expected_serial)
        check_request(self.where, self.app, state, expected)
        if self._lock_id is None:
            with self.lock(UNLOCKED_WRITE):
                check_stored(self.where, self._latest, state, expected)
                self._store(state, self._lock_id or "")
            return
        try:
            check_stored(self.where, self._latest, state, expected)
        except StateConflictError as exc:
            raise persist_failure(self.where, state, self.base_dir, exc.message) from None
        self._store(state, self._lock_id)

    def _store(self, state: RecordedApp, lock_id: str) -> None:
        document = render_state(state, self._fragments).encode("utf-8")
        doing = f"cannot store the state of app {self.app}"
        try:
            status = self.api.post_state(self.name, document, lock_id, doing)
        except StateError as exc:
            if self._landed(state.serial, document):  # the answer was lost, not the write
                status = 200
            else:
                raise persist_failure(self.where, state, self.base_dir, exc.message) from None
        if status == 409:
            reason = (
                f"this run no longer holds the lock of app {self.app}: it was removed (state"
                " unlock --force) or taken by another run"
            )
            raise persist_failure(self.where, state, self.base_dir, reason)
        if status == 422:
            reason = f"GitLab already holds a version {state.serial} of this state"
            raise persist_failure(self.where, state, self.base_dir, reason)
        self._latest = state

    def _landed(self, serial: int, document: bytes) -> bool:
        with contextlib.suppress(StateError):
            doing = "cannot look up the version just written"
            return self.api.get_version(self.name, serial, doing) == document
        return False

    # --- locking ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold GitLab's lock of the state for the block."""
        self._notices, self._looked = [], False
        lock_id = encode(current_holder(command, self.app), self.pipeline)
        self._take(lock_id, command)
        try:
            self._latest = self._fetch()
        except BaseException:
            self._release(lock_id)
            raise
        self._lock_id = lock_id
        try:
            yield
        finally:
            self._lock_id = self._latest = None
            self._release(lock_id)

    def _ask(self, lock_id: str, command: str, *, may_refuse: bool = False) -> LockAnswer | None:
        info = {
            "Operation": command,
            "Info": f"provisioner state of app {self.app}",
            "Who": current_holder(command, self.app).user,
            "Version": __version__,
            "Created": utc_now(),
            "Path": self.name,
        }
        doing = f"cannot lock the state of app {self.app}"
        return self.api.lock(self.name, lock_id, info, doing, may_refuse=may_refuse)

    def _take(self, lock_id: str, command: str) -> None:
        answer = self._ask(lock_id, command)
        if answer is None or answer.granted:
            return
        found = decode(answer.lock_id, answer.who, answer.created, self.app)
        if found.holder is not None and is_gone(found.holder):
            doing = f"cannot take over the lock of app {self.app}"
            if self.api.unlock(self.name, found.lock_id, doing):
                answer = self._ask(lock_id, command)
                if answer is None or answer.granted:
                    tell(
                        self._notices,
                        f"app {self.app}: took over the lock of {found.describe()}: its process"
                        " is gone",
                    )
                    return
                found = decode(answer.lock_id, answer.who, answer.created, self.app)
        raise locked_error(self.app, found)

    def _release(self, lock_id: str) -> None:
        doing = f"cannot unlock the state of app {self.app}"
        try:
            released = self.api.unlock(self.name, lock_id, doing)
        except StateError as exc:
            raise StateError(
                exc.message,
                hint=f"GitLab's lock does not expire: once GitLab answers, run `provisioner"
                f" state unlock {self.app} --force`",
            ) from None
        if not released:
            tell(
                self._notices,
                f"app {self.app}: its lock had already been removed (state unlock --force) or"
                " taken by another run",
            )

    def _probe(self) -> GitLabHolder | None:
        """Who holds the lock (None: free, or not to be seen with this token). GitLab shows
        a lock only to a lock request: a free lock is taken under a probe ID and given back
        at once; a token that may not lock (a plan job's) sees nothing, and says so."""
        if self._looked:
            return self._probed
        lock_id = encode(current_holder(PROBE, self.app), None)
        answer = self._ask(lock_id, PROBE, may_refuse=True)
        if answer is None:
            tell(
                self._notices,
                f"app {self.app}: the lock of the gitlab state cannot be seen with this token"
                " (only a role that may lock, Maintainer, can see it)",
            )
            found = None
        elif answer.granted:
            self.api.unlock(self.name, lock_id, f"cannot unlock the state of app {self.app}")
            found = None
        else:
            found = decode(answer.lock_id, answer.who, answer.created, self.app)
        self._probed, self._looked = found, True
        return found

    def lock_holder(self) -> LockHolder | None:
        found = self._probe()
        return found.holder if found is not None else None

    def is_locked(self) -> bool:
        found = self._probe()
        return found is not None and not (found.holder is not None and is_gone(found.holder))

    def unlock(self) -> LockHolder | None:
        """Remove the lock as it is now (only that one: a lock taken meanwhile stays)."""
        self._looked = False
        found = self._probe()
        self._looked = False
        if found is None:
            return None
        if not self.api.unlock(self.name, found.lock_id, f"cannot unlock the app {self.app}"):
            raise StateError(
                f"{self.where}: the lock of app {self.app} changed while it was being removed",
                hint=f"run `provisioner state unlock {self.app}` again to see the new holder",
            )
        return found.holder

    # --- the rest of the protocol -----------------------------------------------------

    def pending_error(self) -> StateError | None:
        """Always None: every write is stored before :meth:`write` returns."""
        return None

    def notices(self) -> list[str]:
        return list(self._notices)

    def read_drift_record(self) -> DriftRecord | None:
        doing = f"cannot read the drift record of app {self.app}"
        document = self.api.get_state(self.name + DRIFT_SUFFIX, doing)
        if document is None:
            return None
        where = f"GitLab Terraform state {self.name}{DRIFT_SUFFIX}, drift record of app {self.app}"
        return parse_drift_record(document, where, self.app)

    def write_drift_record(self, record: DriftRecord) -> None:
        doing = f"cannot write the drift record of app {self.app}"
        document = dumps_drift_record(record).encode("utf-8")
        status = self.api.post_state(self.name + DRIFT_SUFFIX, document, None, doing)
        if status == 409:
            raise StateError(
                f"{self.where}: {doing}: its state {self.name}{DRIFT_SUFFIX} is locked",
                hint="provisioner never locks it: unlock it under Operate > Terraform states",
            )


def locked_error(app: str, found: GitLabHolder) -> LockedError:
    """The refusal of a second run, naming the holder, its job and pipeline."""
    return LockedError(
        f"the state of app {app} is locked by {found.describe()}",
        hint="wait for that run to finish; GitLab's lock does not expire, so if it is gone"
        f" (see its job), run `provisioner state unlock {app} --force`",
    )
