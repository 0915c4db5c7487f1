"""The lock of one app in the postgres backend: a session advisory lock and a holder row.

The advisory lock's 64-bit key is ``hashtextextended('<schema>/<app>', 0)``: one key per schema
and app, so apps of two schemas (or two installations in one database) never collide. The row
in ``<schema>.locks`` names the holder; ``pg_locks`` joined with ``pg_stat_activity`` names the
session even before its row is written. Every function takes the connection to run on.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from provisioner.errors import LockedError, StateError
from provisioner.state.model import LockHolder
from provisioner.state.postgres.store import OWN_SESSION, Session, pooler_error

if TYPE_CHECKING:
    import psycopg

HELD_BY_THIS_SESSION = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %(high)s"
    " AND objid::bigint = %(low)s AND objsubid = 1 AND pid = pg_backend_pid() AND granted)"
)
"""True when the session running the statement holds the app's advisory lock."""

Key = tuple[int, int]
"""The lock key as pg_locks shows it: (classid, objid), the high and low 32 bits."""
GIVE_BACK_TRIES = 8
"""Statements a refused lock spends trying to reach the server session that took it."""


class AppLock:
    """The lock of ``app`` in ``schema``; ``where`` names the store in messages."""

    def __init__(self, schema: str, app: str, where: str) -> None:
        self.schema = schema
        self.app = app
        self.where = where

    def key(self, connection: psycopg.Connection[Any]) -> Key:
        row = connection.execute(
            "SELECT hashtextextended(%s, 0)", [f"{self.schema}/{self.app}"]
        ).fetchone()
        value = int(row[0]) if row else 0
        return (value >> 32) & 0xFFFFFFFF, value & 0xFFFFFFFF

    def try_lock(self, session: Session, key: Key) -> bool:
        """Take the lock on ``session``'s own server session; StateError (a pooler) when the
        statement ran on another one, which then took nothing."""
        values = {"marker": session.marker, "pid": session.pid, "key": _bigint(key)}
        row = session.connection.execute(
            f"SELECT pg_backend_pid(), CASE WHEN {OWN_SESSION}"
            " THEN pg_try_advisory_lock(%(key)s) END",
            values,
        ).fetchone()
        if row is None or row[1] is None:
            found = int(row[0]) if row else 0
            raise pooler_error(
                self.where,
                f"the statement taking the lock ran on server session {found}, not on this"
                f" connection's ({session.pid})",
                f"cannot lock the state of app {self.app}",
            )
        return bool(row[1])

    def prove(self, session: Session, key: Key, reader: psycopg.Connection[Any]) -> None:
        """After :meth:`try_lock`, prove the lock is this connection's to keep: a separate
        statement must run on the same server session (its pid and marker) and find the
        lock held there, and another connection (``reader``) must be on another server
        session. StateError (a pooler) otherwise, after giving the lock back if a statement
        reaches the server session that took it."""
        try:
            detail = self._disproof(session, key, reader)
        except BaseException:
            with contextlib.suppress(Exception):
                self._give_back(session, key)
            raise
        if detail is not None:
            self._give_back(session, key)
            raise pooler_error(self.where, detail, f"cannot lock the state of app {self.app}")

    def _disproof(self, session: Session, key: Key, reader: psycopg.Connection[Any]) -> str | None:
        """What shows that ``session`` does not keep the lock it took (None: nothing)."""
        high, low = key
        values = {"marker": session.marker, "pid": session.pid, "high": high, "low": low}
        row = session.connection.execute(
            f"SELECT pg_backend_pid(), {OWN_SESSION}, {HELD_BY_THIS_SESSION}", values
        ).fetchone()
        pid, own, held = (int(row[0]), bool(row[1]), bool(row[2])) if row else (0, False, False)
        if not own:
            return (
                f"the statement after taking the lock ran on server session {pid}, not on"
                f" {session.pid}, which took it"
            )
        if not held:
            return f"server session {pid} no longer holds the lock"
        found = reader.execute("SELECT pg_backend_pid()").fetchone()
        if found is not None and int(found[0]) == session.pid:
            return (
                f"another connection of this process was handed server session"
                f" {session.pid}, which holds the lock"
            )
        return None

    def _give_back(self, session: Session, key: Key) -> None:
        """Release the lock where it was taken: the server session ``session.pid``, which
        a pooler may hand to any of up to :data:`GIVE_BACK_TRIES` statements."""
        values = {"pid": session.pid, "key": _bigint(key)}
        for _ in range(GIVE_BACK_TRIES):
            row = session.connection.execute(
                "SELECT CASE WHEN pg_backend_pid() = %(pid)s THEN pg_advisory_unlock(%(key)s) END",
                values,
            ).fetchone()
            if row is not None and row[0] is not None:
                return

    def unlock(self, connection: psycopg.Connection[Any], key: Key) -> None:
        connection.execute("SELECT pg_advisory_unlock(%s)", [_bigint(key)])

    def replace_row(
        self, connection: psycopg.Connection[Any], session_pid: int, holder: LockHolder
    ) -> LockHolder | bool | None:
        """In one transaction, put ``holder``'s row in place of a dead session's; returns
        the dead holder (None: unrecorded, False: there was no row). A row naming this very
        session for another holder means a transaction pooler: StateError."""
        from psycopg import sql

        table = sql.SQL("{}.locks").format(sql.Identifier(self.schema))
        with connection.transaction():
            row = connection.execute(
                sql.SQL("DELETE FROM {} WHERE app = %s RETURNING holder, backend_pid").format(
                    table
                ),
                [self.app],
            ).fetchone()
            if row is not None and int(row[1]) == session_pid:
                raise pooler_error(
                    self.where,
                    f"the lock is recorded for this very session (pid {session_pid}) by"
                    " another holder",
                    f"cannot lock the state of app {self.app}",
                )
            connection.execute(
                sql.SQL(
                    "INSERT INTO {} (app, token, backend_pid, holder) VALUES (%s, %s, %s, %s)"
                ).format(table),
                [self.app, holder.token, session_pid, json.dumps(holder.data)],
            )
        return LockHolder.from_data(row[0]) if row is not None else False

    def delete_row(self, connection: psycopg.Connection[Any], token: str | None = None) -> None:
        """Delete the app's holder row (only the one of ``token`` when given)."""
        from psycopg import sql

        table = sql.SQL("{}.locks").format(sql.Identifier(self.schema))
        if token is None:
            connection.execute(sql.SQL("DELETE FROM {} WHERE app = %s").format(table), [self.app])
        else:
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE app = %s AND token = %s").format(table),
                [self.app, token],
            )

    def recorded_holder(self, connection: psycopg.Connection[Any]) -> LockHolder | None:
        from psycopg import sql

        row = connection.execute(
            sql.SQL("SELECT holder FROM {}.locks WHERE app = %s").format(
                sql.Identifier(self.schema)
            ),
            [self.app],
        ).fetchone()
        return LockHolder.from_data(row[0]) if row is not None else None

    def holder_session(self, connection: psycopg.Connection[Any]) -> tuple[int, str] | None:
        """Backend pid and ``application_name`` of the session holding the lock."""
        high, low = self.key(connection)
        row = connection.execute(
            "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
            " AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1"
            " AND l.granted",
            [high, low],
        ).fetchone()
        return (int(row[0]), str(row[1])) if row is not None else None

    def locked_error(self, connection: psycopg.Connection[Any]) -> LockedError:
        """The refusal of a second run, naming the holder (its row, else its session)."""
        holder = self.recorded_holder(connection)
        if holder is not None:
            who = holder.describe()
        else:
            session = self.holder_session(connection)
            who = (
                f"{session[1]} (backend pid {session[0]})"
                if session is not None
                else "another session (holder not recorded)"
            )
        return LockedError(
            f"the state of app {self.app} is locked by {who}",
            hint="wait for that run to finish; if it is gone, its session ends and frees the lock"
            f" (or run `provisioner state unlock {self.app} --force` to end it)",
        )

    def terminate(self, connection: psycopg.Connection[Any], pid: int) -> None:
        """End session ``pid`` (``pg_terminate_backend``) and wait, up to 5 s, until its
        lock is gone."""
        row = connection.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()
        if not (row and row[0]):
            raise StateError(
                f"{self.where}: could not end the session (backend pid {pid}) holding the lock"
                f" of app {self.app}",
                hint="ask a database administrator to end it, or wait for that run to finish",
            )
        for _ in range(100):
            if self.holder_session(connection) is None:
                return
            time.sleep(0.05)


def _bigint(key: Key) -> int:
    value = (key[0] << 32) | key[1]
    return value - (1 << 64) if value >= 1 << 63 else value
