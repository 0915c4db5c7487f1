"""The postgres backend: one row per app in ``<schema>.states``, locks that die with their
session.

* **Write** = one statement, one transaction: ``UPDATE states SET ... WHERE app = %s AND
  serial = <expected> AND lineage = <lineage>`` (an ``INSERT ... ON CONFLICT DO NOTHING`` for
  the first). Under the lock the statement also requires that *its own session* holds the
  app's advisory lock, so a write can never land for a run that lost its lock. No row
  changed = the stored version moved: StateConflictError naming both versions.
* **Lock** = ``pg_try_advisory_lock`` on a 64-bit ``hashtextextended(schema || '/' || app)``
  (keyed per schema and app, so apps of two schemas never collide) plus a row in
  ``<schema>.locks`` naming the holder. A session that dies (kill -9, lost runner) frees its
  lock at once; its row is cleared by the next taker, who says so. A free lock whose row names
  a live session of *this* connection means a transaction pooler mixed two clients: refused.
* **Drift record**: one row per app in ``<schema>.drift_records`` (layout version 2), written
  by the drift runs without the lock (an upsert: the last writer wins), read by plans.
* **Failure to persist**: the state is saved to ``.provisioner/state-unsaved/<app>.json`` and
  the StateError's hint is the ``provisioner state push`` command.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.errors import ConfigError, StateConflictError, StateError
from provisioner.secrets import is_available, references, resolve
from provisioner.state.backend import BackendKind, StateBackend, tell
from provisioner.state.codec import MAX_STATE_BYTES, Fragments, parse_state, render_state
from provisioner.state.drift_record import (
    MAX_RECORD_BYTES,
    DriftRecord,
    dumps_drift_record,
    parse_drift_record,
)
from provisioner.state.holder import current_holder
from provisioner.state.model import LockHolder, RecordedApp
from provisioner.state.postgres.lock import HELD_BY_THIS_SESSION, AppLock
from provisioner.state.postgres.store import PostgresStore, Session, on_own_session, pooler_reason
from provisioner.state.succession import check_request, check_stored, expected_serial_of
from provisioner.state.unsaved import persist_failure

if TYPE_CHECKING:
    import psycopg

    from provisioner.models import PostgresStateSettings

_STORES: dict[tuple[str, str], PostgresStore] = {}
_STORES_MUTEX = threading.Lock()


def shared_store(dsn: str, schema: str, where: str) -> PostgresStore:
    """The process's store for (``dsn``, ``schema``): one set of connections for every app."""
    with _STORES_MUTEX:
        store = _STORES.get((dsn, schema))
        if store is None:
            if not _STORES:
                atexit.register(close_stores)
            holder = current_holder("provisioner", "")
            name = f"provisioner {holder.user}@{holder.host} pid {holder.pid}"
            store = PostgresStore(dsn, schema, where=where, application_name=name[:63])
            _STORES[(dsn, schema)] = store
        return store


def close_stores() -> None:
    """Close the connections of every shared store (at exit, and between tests)."""
    with _STORES_MUTEX:
        stores = list(_STORES.values())
    for store in stores:
        store.close()


class PostgresBackend(StateBackend):
    """Recorded state of app ``app`` in ``store`` (see the module docstring)."""

    kind: BackendKind = "postgres"

    def __init__(
        self, app: str, store: PostgresStore, *, base_dir: Path, read_only: bool = False
    ) -> None:
        self.app = app
        self.store = store
        self.base_dir = base_dir
        self.read_only = read_only
        """Connected with ``state.readDsn``: it reads, and refuses to lock or write."""
        self._fragments: Fragments = {}
        self._lock = AppLock(store.schema, app, store.where)
        self._session: Session | None = None
        self._key: tuple[int, int] | None = None
        self._token: str | None = None
        self._notices: list[str] = []

    @classmethod
    def for_settings(
        cls,
        app: str,
        settings: PostgresStateSettings,
        base_dir: Path,
        env: Mapping[str, str] | None,
        *,
        read_only: bool = False,
    ) -> PostgresBackend:
        """The backend of ``app``; the DSN's ``${NAME}`` references are resolved from
        ``env`` (default: the process environment). ``read_only`` (a command that never
        locks or writes): ``readDsn`` when it is set and its variables are, else ``dsn``;
        when neither can be resolved, the error names ``readDsn``, what a plan job holds."""
        environ = os.environ if env is None else env
        field, chosen = "dsn", settings.dsn
        if read_only and settings.readDsn is not None:
            usable = all(is_available(name, environ) for name in references(settings.readDsn))
            if usable or not all(is_available(n, environ) for n in references(settings.dsn)):
                field, chosen = "readDsn", settings.readDsn
        try:
            dsn = resolve(chosen, environ)
        except ConfigError as exc:
            raise ConfigError(f"app {app}: state.{field}: {exc.message}", hint=exc.hint) from None
        where = f"postgres schema {settings.schema_name}"
        store = shared_store(dsn, settings.schema_name, where)
        return cls(app, store, base_dir=base_dir, read_only=field == "readDsn")

    def __repr__(self) -> str:
        return f"PostgresBackend(app={self.app!r}, schema={self.store.schema!r})"

    def describe(self) -> str:
        return self.store.where

    # --- reading ----------------------------------------------------------------------

    def read_recorded(self) -> RecordedApp | None:
        import psycopg

        try:
            with self._connection() as connection:
                if self._session is None and not self.store.check_version(connection):
                    return None
                return self._select(connection)
        except psycopg.Error as exc:
            raise self.store.translate(exc, f"cannot read the state of app {self.app}") from None

    def _select(self, connection: psycopg.Connection[Any]) -> RecordedApp | None:
        from psycopg import sql

        row = connection.execute(
            sql.SQL(
                "SELECT octet_length(document), CASE WHEN octet_length(document) <= %s"
                " THEN document END FROM {}.states WHERE app = %s"
            ).format(sql.Identifier(self.store.schema)),
            [MAX_STATE_BYTES, self.app],
        ).fetchone()
        if row is None:
            return None
        where = f"{self.store.where}, app {self.app}"
        if row[1] is None:
            raise StateError(
                f"{where}: the stored document is over {MAX_STATE_BYTES} bytes ({row[0]});"
                " it is not a state",
                hint="restore the row from a backup; provisioner will not overwrite it",
            )
        state = parse_state(str(row[1]).encode("utf-8"), where)
        if state.app != self.app:
            raise StateError(
                f"{where}: the row holds the state of app {state.app}",
                hint="restore the row from a backup; provisioner will not overwrite it",
            )
        return state

    # --- writing ----------------------------------------------------------------------

    def write(self, state: RecordedApp, *, expected_serial: int | None = None) -> None:
        import psycopg

        self._refuse_if_read_only("write")
        expected = expected_serial_of(state, expected_serial)
        check_request(self.store.where, self.app, state, expected)
        document = render_state(state, self._fragments)
        session = self._session
        try:
            with self._connection() as connection:
                if session is None:
                    self.store.migrate(connection)
                if self._store_row(connection, state, document, expected):
                    return
                stored = self._select(connection)
                elsewhere = on_own_session(connection, session) if session else None
        except psycopg.Error as exc:
            reason = self.store.translate(exc, "the write failed").message
            raise persist_failure(self.store.where, state, self.base_dir, reason) from None
        try:
            check_stored(self.store.where, stored, state, expected)
        except StateConflictError as exc:
            if session is None:
                raise
            kept = persist_failure(self.store.where, state, self.base_dir, exc.message)
            raise kept from None
        lost = f"this run no longer holds the lock of app {self.app} (its session lost it)"
        if elsewhere is not None:
            lost = pooler_reason(f"a write {elsewhere}")
        raise persist_failure(self.store.where, state, self.base_dir, lost)

    def _store_row(
        self, connection: psycopg.Connection[Any], state: RecordedApp, document: str, expected: int
    ) -> bool:
        """The compare-and-swap statement; True when it changed the row."""
        from psycopg import sql

        schema = sql.Identifier(self.store.schema)
        guard = sql.SQL(" AND " + HELD_BY_THIS_SESSION if self._session is not None else "")
        high, low = self._key or (0, 0)
        values = {
            "app": self.app,
            "lineage": state.lineage,
            "serial": state.serial,
            "document": document,
            "expected": expected,
            "high": high,
            "low": low,
        }
        if expected == 0:
            statement = sql.SQL(
                "INSERT INTO {schema}.states (app, lineage, serial, document)"
                " SELECT %(app)s, %(lineage)s, %(serial)s, %(document)s WHERE true{guard}"
                " ON CONFLICT (app) DO NOTHING"
            )
        else:
            statement = sql.SQL(
                "UPDATE {schema}.states SET lineage = %(lineage)s, serial = %(serial)s,"
                " document = %(document)s, updated_at = now()"
                " WHERE app = %(app)s AND serial = %(expected)s AND lineage = %(lineage)s{guard}"
            )
        cursor = connection.execute(statement.format(schema=schema, guard=guard), values)
        return cursor.rowcount == 1

    # --- locking ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the app's advisory lock (and its holder row) for the block."""
        self._refuse_if_read_only("lock")
        session = self.store.lock_session(self.app)
        try:
            self._take(session, command)
        except BaseException:
            self.store.release_session(session, self.app)
            raise
        self._session = session
        try:
            yield
        finally:
            self._session = None
            try:
                self._give_back(session)
            finally:
                self.store.release_session(session, self.app)

    def _take(self, session: Session, command: str) -> None:
        import psycopg

        self._notices = []
        holder = current_holder(command, self.app)
        try:
            with session.mutex:
                connection = session.connection
                self.store.migrate(connection)
                key = self._lock.key(connection)
                if not self._lock.try_lock(session, key):
                    raise self._lock.locked_error(connection)
                with self.store.reading() as reader:
                    self._lock.prove(session, key, reader)
                try:
                    dead = self._lock.replace_row(connection, session.pid, holder)
                except BaseException:
                    self._lock.unlock(connection, key)
                    raise
        except psycopg.Error as exc:
            raise self.store.translate(exc, f"cannot lock the state of app {self.app}") from None
        self._key, self._token = key, holder.token
        if dead is not False:
            who = dead.describe() if isinstance(dead, LockHolder) else "an unrecorded holder"
            tell(
                self._notices,
                f"app {self.app}: cleared the lock record of {who}, whose database session"
                " had ended",
            )

    def _give_back(self, session: Session) -> None:
        """Delete our holder row and release the advisory lock."""
        import psycopg

        key, token = self._key, self._token
        self._key = self._token = None
        if key is None:
            return
        try:
            with session.mutex:
                self._lock.delete_row(session.connection, token)
                self._lock.unlock(session.connection, key)
        except psycopg.Error as exc:
            if session.connection.closed or session.connection.broken:
                return  # the session is gone, and its advisory lock with it
            raise self.store.translate(exc, f"cannot unlock the state of app {self.app}") from None

    # --- the rest of the protocol -----------------------------------------------------

    def lock_holder(self) -> LockHolder | None:
        import psycopg

        try:
            with self.store.reading() as connection:
                if not self.store.check_version(connection):
                    return None
                return self._lock.recorded_holder(connection)
        except psycopg.Error as exc:
            raise self.store.translate(exc, "cannot read the lock holder") from None

    def is_locked(self) -> bool:
        import psycopg

        try:
            with self.store.reading() as connection:
                return self._lock.holder_session(connection) is not None
        except psycopg.Error as exc:
            raise self.store.translate(exc, "cannot read the lock") from None

    def unlock(self) -> LockHolder | None:
        """End the session holding the lock, if any (``pg_terminate_backend``), and delete
        the holder row; returns the holder it named."""
        import psycopg

        self._refuse_if_read_only("unlock")
        try:
            with self.store.reading() as connection:
                if not self.store.check_version(connection):
                    return None
                holder = self._lock.recorded_holder(connection)
                session = self._lock.holder_session(connection)
                if session is not None:
                    self._lock.terminate(connection, session[0])
                self._lock.delete_row(connection)
                return holder
        except psycopg.Error as exc:
            raise self.store.translate(exc, f"cannot unlock the state of app {self.app}") from None

    def read_drift_record(self) -> DriftRecord | None:
        import psycopg
        from psycopg import sql

        statement = sql.SQL("SELECT left(document, %s) FROM {}.drift_records WHERE app = %s")
        try:
            with self.store.reading() as connection:
                if not self.store.check_version(connection, "drift_records"):
                    return None
                row = connection.execute(
                    statement.format(sql.Identifier(self.store.schema)),
                    [MAX_RECORD_BYTES + 1, self.app],  # longer: refused by its size
                ).fetchone()
        except psycopg.Error as exc:
            doing = f"cannot read the drift record of app {self.app}"
            raise self.store.translate(exc, doing) from None
        if row is None:
            return None
        where = f"{self.store.where}, drift record of app {self.app}"
        return parse_drift_record(str(row[0]).encode("utf-8"), where, self.app)

    def write_drift_record(self, record: DriftRecord) -> None:
        import psycopg
        from psycopg import sql

        statement = sql.SQL(
            "INSERT INTO {}.drift_records (app, document) VALUES (%s, %s) ON CONFLICT (app)"
            " DO UPDATE SET document = EXCLUDED.document, updated_at = now()"
        )
        try:
            with self.store.reading() as connection:
                self.store.migrate(connection)
                connection.execute(
                    statement.format(sql.Identifier(self.store.schema)),
                    [self.app, dumps_drift_record(record)],
                )
        except psycopg.Error as exc:
            doing = f"cannot write the drift record of app {self.app}"
            raise self.store.translate(exc, doing) from None

    def _refuse_if_read_only(self, doing: str) -> None:
        if self.read_only:
            raise StateError(
                f"{self.store.where}: cannot {doing} the state of app {self.app} through"
                " state.readDsn, which is for reading only",
                hint="this is a bug: commands that lock or write use state.dsn; report it",
            )

    def pending_error(self) -> StateError | None:
        """Always None: every write is committed before :meth:`write` returns."""
        return None

    def notices(self) -> list[str]:
        return list(self._notices)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The lock session while the lock is held, else the store's reader."""
        session = self._session
        if session is None:
            with self.store.reading() as connection:
                yield connection
            return
        with session.mutex:
            yield session.connection
