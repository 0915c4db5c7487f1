"""SQLite storage of the emulator: bots per app key, plus the apps of a persistent database.

One connection, opened by :meth:`BotStore.open` and used from the server thread and from the
caller's thread (``stats``/``local``), so it is created with ``check_same_thread=False`` and every
use holds a lock. File databases run in WAL mode. A bot is stored as its normalised JSON body
(defaults filled in) with ``createdAt``/``updatedAt`` in milliseconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import EmulatorError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (app_key TEXT PRIMARY KEY, app_secret TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (app_key, user_id)
);
"""


@dataclass(frozen=True)
class StoredBot:
    """A bot as kept in the database."""

    body: dict[str, Any]
    created_at: int
    updated_at: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.body, "createdAt": self.created_at, "updatedAt": self.updated_at}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BotStore:
    """Bots of every app key in one SQLite database (thread safe)."""

    def __init__(self, connection: sqlite3.Connection, *, clock_ms: Callable[[], int] = _now_ms):
        self._db = connection
        self._lock = threading.Lock()
        self._clock_ms = clock_ms

    @classmethod
    def open(cls, path: Path) -> BotStore:
        """Open (creating if needed) the database at ``path``; EmulatorError when unusable."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorError(
                f"cannot open the emulator database {path}: {exc}",
                hint="check that the folder exists and is writable, or pass another --db",
            ) from exc
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable enough for a stand-in
            connection.executescript(_SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.Error as exc:
            connection.close()
            raise EmulatorError(
                f"cannot use the emulator database {path}: {exc}",
                hint="it is not an emulator database: delete it, or pass another --db",
            ) from exc
        return cls(connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # apps ---------------------------------------------------------------------------------

    def stored_apps(self) -> dict[str, str]:
        """The app keys and secrets recorded in this database."""
        with self._lock:
            rows = self._db.execute("SELECT app_key, app_secret FROM apps ORDER BY app_key")
            return {str(key): str(secret) for key, secret in rows.fetchall()}

    def save_apps(self, apps: dict[str, str]) -> None:
        """Record (or replace) app keys and secrets."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO apps (app_key, app_secret) VALUES (?, ?) "
                "ON CONFLICT (app_key) DO UPDATE SET app_secret = excluded.app_secret",
                sorted(apps.items()),
            )

    # bots ---------------------------------------------------------------------------------

    def count(self, app_key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM bots WHERE app_key = ?", (app_key,))
            return int(row.fetchone()[0])

    def get(self, app_key: str, user_id: str) -> StoredBot | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body, created_at, updated_at FROM bots WHERE app_key = ? AND user_id = ?",
                (app_key, user_id),
            ).fetchone()
        return None if row is None else _stored(row)

    def create(self, app_key: str, body: dict[str, Any], *, quota: int | None) -> str | None:
        """Insert a bot; ``"duplicate"`` or ``"quota"`` (never without a ``quota``) when
        refused, else ``None``."""
        now = self._clock_ms()
        with self._transaction() as db:
            user_id = body["userId"]
            exists = db.execute(
                "SELECT 1 FROM bots WHERE app_key = ? AND user_id = ?", (app_key, user_id)
            ).fetchone()
            if exists:
                return "duplicate"
            (count,) = db.execute(
                "SELECT COUNT(*) FROM bots WHERE app_key = ?", (app_key,)
            ).fetchone()
            if quota is not None and count >= quota:
                return "quota"
            db.execute(
                "INSERT INTO bots (app_key, user_id, body, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (app_key, user_id, json.dumps(body, ensure_ascii=False), now, now),
            )
        return None

    def replace(self, app_key: str, body: dict[str, Any]) -> bool:
        """Replace a bot's whole body; ``False`` when it does not exist."""
        now = self._clock_ms()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE bots SET body = ?, updated_at = MAX(?, created_at) "
                "WHERE app_key = ? AND user_id = ?",
                (json.dumps(body, ensure_ascii=False), now, app_key, body["userId"]),
            )
            return cursor.rowcount == 1

    def delete(self, app_key: str, user_id: str) -> bool:
        """Delete a bot; ``False`` when it does not exist."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM bots WHERE app_key = ? AND user_id = ?", (app_key, user_id)
            )
            return cursor.rowcount == 1

    def page(self, app_key: str, *, offset: int, limit: int) -> tuple[int, list[StoredBot]]:
        """``(total, bots)`` of one page, oldest first."""
        with self._lock:
            (total,) = self._db.execute(
                "SELECT COUNT(*) FROM bots WHERE app_key = ?", (app_key,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT body, created_at, updated_at FROM bots WHERE app_key = ? "
                "ORDER BY seq LIMIT ? OFFSET ?",
                (app_key, limit, offset),
            ).fetchall()
        return int(total), [_stored(row) for row in rows]


def _stored(row: tuple[str, int, int]) -> StoredBot:
    body, created_at, updated_at = row
    return StoredBot(body=json.loads(body), created_at=int(created_at), updated_at=int(updated_at))
