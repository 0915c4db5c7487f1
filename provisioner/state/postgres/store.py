"""Connections of the postgres backend to one schema of one database (psycopg 3).

One :class:`PostgresStore` per (DSN, schema) and process, shared by every app of a run:

* a *reader* connection for reads and unlocked writes (``plan``, ``state show``);
* up to :data:`MAX_SESSIONS` *lock sessions*: each holds the session advisory locks of the
  apps assigned to it and writes their state, so a write can check, in the same statement,
  that its own session still holds the app's lock. A run over 100 apps needs 5 connections,
  not 100.

Every connection: autocommit, no prepared statements (``prepare_threshold=None``: a statement
prepared on one server session is unknown on the next one a pooler hands out), TCP keepalives
and ``tcp_user_timeout`` (a dead network ends a call instead of hanging it), a connect timeout,
the holder in ``application_name``, and a random *session marker* in the session-level setting
``provisioner.session``: a statement that does not see its own marker (or its own
``pg_backend_pid()``) runs on another client's server session, which is how a transaction-mode
pooler is recognised (:func:`on_own_session`). The DSN is a
secret: no message, and no exception chain, carries it or its password (:func:`translate`).
Tables live in the schema, created on first lock or write by versioned, idempotent
migrations (``<schema>.migrations``); reads never create anything.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from provisioner.errors import StateError
from provisioner.secrets.dsn import scrub

if TYPE_CHECKING:
    import psycopg

MAX_SESSIONS = 4
"""Lock sessions per store: the apply writes on at most two recording threads anyway."""
SCHEMA_VERSION = 2
"""The newest table layout this release knows (2: the drift records)."""
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
SESSION_SETTINGS = (
    "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;"
    " SET tcp_keepalives_count = 3; SET statement_timeout = '60s'; SET lock_timeout = '30s'"
)
"""The server's side of the keepalives: it frees a dead client's locks within ~1 minute."""
SESSION_MARKER = "provisioner.session"
"""The session-level setting holding a connection's random marker (see the module docstring)."""
OWN_SESSION = (
    "coalesce(current_setting('provisioner.session', true), '') = %(marker)s"
    " AND pg_backend_pid() = %(pid)s"
)
"""True when the statement runs on the server session its connection was opened with."""
READ_ONLY_REFUSALS = frozenset({"42501", "25006"})
"""SQLSTATEs of a statement a read-only role may not run: insufficient_privilege, and
read_only_sql_transaction (``default_transaction_read_only``)."""
_PRIVILEGE_HINT = (
    "the DSN's role may not do this: locking and writing need SELECT, INSERT, UPDATE and"
    ' DELETE on the schema\'s tables (docs/state.md, "Roles"); a read-only role belongs in'
    " state.readDsn, which only the commands that read use"
)

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS {schema}.states ("
        " app text PRIMARY KEY, lineage text NOT NULL, serial bigint NOT NULL CHECK (serial > 0),"
        " document text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS {schema}.locks ("
        " app text PRIMARY KEY, token text NOT NULL, backend_pid integer NOT NULL,"
        " holder jsonb NOT NULL, locked_at timestamptz NOT NULL DEFAULT now())",
    ),
    2: (
        "CREATE TABLE IF NOT EXISTS {schema}.drift_records ("
        " app text PRIMARY KEY, document text NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now())",
    ),
}


class Session:
    """One connection that holds advisory locks (a lock session) or serves reads."""

    def __init__(self, connection: psycopg.Connection[Any], pid: int, marker: str) -> None:
        self.connection = connection
        self.pid = pid
        self.marker = marker
        """The random value of ``provisioner.session`` this connection set on its session."""
        self.mutex = threading.Lock()
        self.apps: set[str] = set()


class PostgresStore:
    """The connections to schema ``schema`` of the database at ``dsn``."""

    def __init__(self, dsn: str, schema: str, *, where: str, application_name: str) -> None:
        self._dsn = dsn
        self.schema = schema
        self.where = where
        """How messages name the store (``postgres schema provisioner``; never the DSN)."""
        self.application_name = application_name
        self._mutex = threading.Lock()
        self._reader: Session | None = None
        self._sessions: list[Session] = []
        self._migrated = False

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # --- connections ------------------------------------------------------------------

    def connect(self, doing: str | None = None) -> Session:
        """A new connection; StateError (without the DSN) when it cannot be made or does
        not keep its server session (``doing`` names what it was for)."""
        import psycopg

        try:
            connection = psycopg.connect(
                self._dsn,
                autocommit=True,
                prepare_threshold=None,
                application_name=self.application_name,
                **CONNECT_OPTIONS,
            )
        except psycopg.ProgrammingError:  # libpq's message quotes the DSN: never show it
            raise StateError(
                f"{self.where}: the DSN is not a valid connection string or postgresql:// URI",
                hint="check state.dsn (or the variable it references); provisioner never"
                " prints the DSN",
            ) from None
        except psycopg.Error as exc:
            raise self.translate(exc, "cannot connect") from None
        marker = secrets.token_hex(16)
        try:
            connection.execute(SESSION_SETTINGS)
            row = connection.execute(
                "SELECT pg_backend_pid(), set_config(%s, %s, false)", [SESSION_MARKER, marker]
            ).fetchone()
            first = int(row[0]) if row else 0
            session = Session(connection, first, marker)
            second = on_own_session(connection, session)
        except psycopg.Error as exc:
            connection.close()
            raise self.translate(exc, "cannot set up the connection") from None
        if second is not None:
            connection.close()
            raise pooler_error(self.where, f"the second statement {second}", doing)
        return session

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection[Any]]:
        """The shared reader connection, for one statement or transaction at a time."""
        with self._mutex:
            if self._reader is None or self._reader.connection.closed:
                self._reader = self.connect()
            reader = self._reader
        with reader.mutex:
            yield reader.connection

    def lock_session(self, app: str) -> Session:
        """The lock session ``app`` is assigned to (a new one while fewer than
        :data:`MAX_SESSIONS` exist and every existing one serves an app)."""
        with self._mutex:
            live = [s for s in self._sessions if not s.connection.closed]
            self._sessions = live
            idle = min(live, key=lambda s: len(s.apps), default=None)
            if idle is None or (idle.apps and len(live) < MAX_SESSIONS):
                idle = self.connect(f"cannot lock the state of app {app}")
                self._sessions.append(idle)
            idle.apps.add(app)
            return idle

    def close(self) -> None:
        """Close every connection (the store can be used again: it reconnects)."""
        with self._mutex:
            sessions, self._sessions = self._sessions, []
            reader, self._reader = self._reader, None
        for session in [*sessions, *([reader] if reader is not None else [])]:
            session.connection.close()

    def release_session(self, session: Session, app: str) -> None:
        """``app`` no longer needs ``session``; the last app closes it."""
        with self._mutex:
            session.apps.discard(app)
            if not session.apps:
                self._sessions = [s for s in self._sessions if s is not session]
                session.connection.close()

    # --- schema -----------------------------------------------------------------------

    def migrate(self, connection: psycopg.Connection[Any]) -> None:
        """Create or upgrade the tables (once per store; safe when several runs race).
        Tables already at :data:`SCHEMA_VERSION` need nothing, not even CREATE rights."""
        if self._migrated:
            return
        import psycopg

        try:
            if self._version(connection) == SCHEMA_VERSION:
                self._migrated = True
                return
            with connection.transaction():
                self.run_migrations(connection)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StateError(
                f"{self.where}: not allowed to create the state tables"
                f" ({scrub(exc.diag.message_primary or 'permission denied', self._dsn)})",
                hint=f"have the schema's owner run provisioner once, or grant CREATE on"
                f" schema {self.schema} (and on the database, if the schema does not exist)",
            ) from None
        except psycopg.Error as exc:
            raise self.translate(exc, "cannot create the state tables") from None
        self._migrated = True

    def run_migrations(self, connection: psycopg.Connection[Any]) -> None:
        """Inside a transaction: take the schema's migration lock, apply what is missing."""
        from psycopg import sql

        schema = sql.Identifier(self.schema)
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{self.schema}/"]
        )
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema)
        )
        row = connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}.migrations").format(schema)
        ).fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise newer_schema_error(self.where, current)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                connection.execute(sql.SQL(statement).format(schema=schema))
            connection.execute(
                sql.SQL("INSERT INTO {}.migrations (version) VALUES (%s)").format(schema),
                [version],
            )

    def check_version(self, connection: psycopg.Connection[Any], table: str = "states") -> bool:
        """Whether the tables (``table`` among them) exist (reads create nothing); StateError
        for a layout newer than this release knows."""
        version = self._version(connection)
        if version > SCHEMA_VERSION:
            raise newer_schema_error(self.where, version)
        if not version:
            return False
        row = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f"{self.schema}.{table}"]
        ).fetchone()
        return bool(row and row[0])

    def _version(self, connection: psycopg.Connection[Any]) -> int:
        """The layout version the schema's tables have (0: none yet)."""
        from psycopg import sql

        row = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f"{self.schema}.migrations"]
        ).fetchone()
        if row is None or not row[0]:
            return 0
        found = connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}.migrations").format(
                sql.Identifier(self.schema)
            )
        ).fetchone()
        return int(found[0]) if found else 0

    # --- errors -----------------------------------------------------------------------

    def translate(self, exc: Exception, doing: str) -> StateError:
        """A StateError for a driver error: its first line, without the DSN or password."""
        return translate(exc, doing, self.where, self._dsn)


def translate(exc: Exception, doing: str, where: str, dsn: str) -> StateError:
    """See :meth:`PostgresStore.translate`."""
    lines = str(exc).strip().splitlines()
    detail = scrub(lines[0] if lines else type(exc).__name__, dsn)
    if getattr(exc, "sqlstate", None) in READ_ONLY_REFUSALS:
        return StateError(f"{where}: {doing}: {detail}", hint=_PRIVILEGE_HINT)
    return StateError(
        f"{where}: {doing}: {detail}",
        hint="check the DSN (state.dsn), that the server is up and reachable from here, and"
        " the credentials; provisioner never prints the DSN",
    )


POOLER_HINT = "point state.dsn at the server itself, or at a pool in session mode"


def pooler_reason(detail: str) -> str:
    """Why a connection cannot hold a lock: ``detail`` says what a statement found."""
    return (
        f"the connection does not keep its database session ({detail}): a"
        " transaction-mode pooler (such as PgBouncer with pool_mode=transaction) sits in"
        " between, and session advisory locks cannot work through it"
    )


def pooler_error(where: str, detail: str, doing: str | None = None) -> StateError:
    """The refusal of a connection through a transaction-mode pooler; ``doing``: what it
    was for (``cannot lock the state of app demo``)."""
    prefix = f"{where}: {doing}" if doing else where
    return StateError(f"{prefix}: {pooler_reason(detail)}", hint=POOLER_HINT)


def newer_schema_error(where: str, version: int) -> StateError:
    return StateError(
        f"{where}: the state tables have layout version {version}, newer than this"
        f" provisioner supports ({SCHEMA_VERSION})",
        hint="upgrade provisioner; nothing was changed",
    )


def on_own_session(connection: psycopg.Connection[Any], session: Session) -> str | None:
    """None when a new statement on ``connection`` runs on ``session``'s server session;
    otherwise what it found instead, for :func:`pooler_error`."""
    row = connection.execute(
        "SELECT pg_backend_pid(), coalesce(current_setting(%s, true), '') = %s",
        [SESSION_MARKER, session.marker],
    ).fetchone()
    pid, marked = (int(row[0]), bool(row[1])) if row else (0, False)
    if pid != session.pid:
        return f"ran on server session {pid}, not {session.pid}"
    if not marked:
        return f"ran on server session {pid} without this connection's marker"
    return None
