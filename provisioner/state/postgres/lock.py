"""The lock of one app in the postgres backend: a session advisory lock and a holder row.

The advisory lock's 64-bit key is ``hashtextextended('<schema>/<app>', 0)``: one key per schema
and app, so apps of two schemas (or two installations in one database) never collide. The row
in ``<schema>.locks`` names the holder; ``pg_locks`` joined with ``pg_stat_activity`` names the
session even before its row is written. Every function takes the connection to run on.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from provisioner.errors import LockedError, StateError
from provisioner.state.model import LockHolder
from provisioner.state.postgres.store import pooler_error

if TYPE_CHECKING:
    import psycopg

HELD_BY_THIS_SESSION = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %(high)s"
    " AND objid::bigint = %(low)s AND objsubid = 1 AND pid = pg_backend_pid() AND granted)"
)
"""True when the session running the statement holds the app's advisory lock."""

Key = tuple[int, int]
"""The lock key as pg_locks shows it: (classid, objid), the high and low 32 bits."""


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

    def try_lock(self, connection: psycopg.Connection[Any], key: Key) -> bool:
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", [_bigint(key)]).fetchone()
        return bool(row and row[0])

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
                    f"the lock of app {self.app} is recorded for this very session"
                    f" (pid {session_pid}) by another holder",
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
