"""The Dify stand-in's memory: conversations per (app, user), their messages (a query and
its answer, as Dify's ``GET /messages`` lists them), and a count of completions.

SQLite, like the emulator's bots: in memory for a stand-in of its own, or tables in the
emulator's database for ``endpoint: local`` (so a conversation outlives the command that
started it, and deleting that one file starts everything afresh). An app is stored as a
digest of its key, never the key.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import EmulatorError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dify_conversations (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    user TEXT NOT NULL,
    turns INTEGER NOT NULL,
    last_query TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dify_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    inputs TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dify_messages_conversation ON dify_messages (conversation_id);
CREATE TABLE IF NOT EXISTS dify_completions (
    app TEXT NOT NULL,
    user TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (app, user)
);
"""


def app_digest(api_key: str) -> str:
    """How the store names the app of ``api_key`` (a digest: the key is never stored)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Turn:
    """One message in a conversation: its number (1 for the first) and the query before it."""

    conversation_id: str
    number: int
    previous_query: str | None


@dataclass(frozen=True)
class StoredMessage:
    """One exchange: the user's query and the app's answer."""

    id: str
    conversation_id: str
    query: str
    answer: str
    inputs: dict[str, Any]
    created_at: int


@dataclass(frozen=True)
class StoredConversation:
    id: str
    inputs: dict[str, Any]
    created_at: int
    updated_at: int


class DifyStore:
    """Conversations and completion counts (thread safe)."""

    def __init__(self, connection: sqlite3.Connection, *, clock: Callable[[], float] = time.time):
        self._db = connection
        self._lock = threading.Lock()
        self._clock = clock

    @classmethod
    def open(cls, path: Path | None) -> DifyStore:
        """The store in the database at ``path`` (created if needed), or in memory."""
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                ":memory:" if path is None else path,
                check_same_thread=False,
                isolation_level=None,
                timeout=10.0,
            )
            connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorError(
                f"cannot open the Dify stand-in's database {path}: {exc}",
                hint="check that the folder is writable, or delete the file to start afresh",
            ) from exc
        return cls(connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_turn(self, app: str, user: str, conversation_id: str, query: str) -> Turn | None:
        """Add ``query`` to the conversation ``conversation_id`` of ``user`` ("": a new one);
        ``None`` when it does not exist or belongs to another app or user."""
        now = int(self._clock())
        with self._lock:
            if not conversation_id:
                new_id = str(uuid.uuid4())
                self._db.execute(
                    "INSERT INTO dify_conversations VALUES (?, ?, ?, 1, ?, ?, ?)",
                    (new_id, app, user, query, now, now),
                )
                return Turn(new_id, 1, None)
            row = self._db.execute(
                "SELECT turns, last_query FROM dify_conversations "
                "WHERE id = ? AND app = ? AND user = ?",
                (conversation_id, app, user),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE dify_conversations SET turns = ?, last_query = ?, updated_at = ? "
                "WHERE id = ?",
                (int(row[0]) + 1, query, now, conversation_id),
            )
            return Turn(conversation_id, int(row[0]) + 1, str(row[1]))

    def next_completion(self, app: str, user: str) -> int:
        """Count one more completion for ``user`` of ``app``; the new count."""
        with self._lock:
            self._db.execute(
                "INSERT INTO dify_completions VALUES (?, ?, 1) "
                "ON CONFLICT (app, user) DO UPDATE SET count = count + 1",
                (app, user),
            )
            row = self._db.execute(
                "SELECT count FROM dify_completions WHERE app = ? AND user = ?", (app, user)
            ).fetchone()
            return int(row[0])

    def add_message(
        self,
        conversation_id: str,
        message_id: str,
        query: str,
        answer: str,
        inputs: Mapping[str, Any],
    ) -> None:
        """Record one exchange of a conversation (what ``GET /messages`` lists)."""
        row = (message_id, conversation_id, query, answer, json.dumps(dict(inputs)), self._now())
        with self._lock:
            self._db.execute(
                "INSERT INTO dify_messages (id, conversation_id, query, answer, inputs,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

    def owns(self, app: str, user: str, conversation_id: str) -> bool:
        """True when ``conversation_id`` is a conversation of ``user`` with ``app``."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM dify_conversations WHERE id = ? AND app = ? AND user = ?",
                (conversation_id, app, user),
            ).fetchone()
        return row is not None

    def messages(self, conversation_id: str) -> list[StoredMessage]:
        """The messages of a conversation, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, conversation_id, query, answer, inputs, created_at FROM dify_messages"
                " WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
        return [
            StoredMessage(str(row[0]), str(row[1]), row[2], row[3], json.loads(row[4]), int(row[5]))
            for row in rows
        ]

    def user_conversations(self, app: str, user: str) -> list[StoredConversation]:
        """The conversations of ``user`` with ``app``, oldest first, with the inputs of
        each one's first message."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.created_at, c.updated_at, (SELECT m.inputs FROM dify_messages m"
                " WHERE m.conversation_id = c.id ORDER BY m.seq LIMIT 1) FROM"
                " dify_conversations c WHERE c.app = ? AND c.user = ? ORDER BY c.created_at,"
                " c.rowid",
                (app, user),
            ).fetchall()
        return [
            StoredConversation(row[0], json.loads(row[3] or "{}"), int(row[1]), int(row[2]))
            for row in rows
        ]

    def _now(self) -> int:
        return int(self._clock())

    def conversations(self, user: str) -> list[dict[str, object]]:
        """The conversations of ``user`` (every app), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, turns, last_query FROM dify_conversations WHERE user = ? "
                "ORDER BY created_at, rowid",
                (user,),
            ).fetchall()
        return [{"id": row[0], "turns": row[1], "last_query": row[2]} for row in rows]
