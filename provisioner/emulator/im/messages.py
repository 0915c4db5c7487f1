"""The emulator's message memory: the users registered through ``/user/getToken.json``,
messages between users and bots, what each message fired (its deliveries), and the Dify
``conversation_id`` kept per sender and bot.

Tables of their own in the emulator's database (one more connection to the same SQLite
file), so ``endpoint: local`` keeps conversations between commands. A Dify conversation is
kept for 24 hours from the exchange that started it (RongCloud: "存储时效为 24 小时"), then
the next message starts a new one.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provisioner.errors import EmulatorError

CONVERSATION_TTL_MS = 24 * 60 * 60 * 1000
DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    app_key TEXT NOT NULL,
    from_user TEXT NOT NULL,
    to_user TEXT NOT NULL,
    object_name TEXT NOT NULL,
    content TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    reply_to TEXT
);
CREATE INDEX IF NOT EXISTS messages_pair ON messages (app_key, from_user, to_user);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_uid TEXT NOT NULL,
    integration TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_uid);
CREATE TABLE IF NOT EXISTS users (
    app_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    portrait_uri TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    registered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_key, user_id)
);
CREATE TABLE IF NOT EXISTS dify_sessions (
    app_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    bot_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    PRIMARY KEY (app_key, user_id, bot_id)
);
"""
_UID_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_message_uid() -> str:
    """A message UID shaped like RongCloud's (``BS45-6HJM-0DK4-4A7M``: four groups of four)."""
    return "-".join("".join(secrets.choice(_UID_ALPHABET) for _ in range(4)) for _ in range(4))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Message:
    uid: str
    from_user: str
    to_user: str
    object_name: str
    content: str
    sent_at: int
    reply_to: str | None = None


@dataclass(frozen=True)
class Conversation:
    """What :meth:`MessageStore.conversation` read at one moment."""

    messages: list[Message]
    deliveries: dict[str, list[dict[str, Any]]]
    """Per message of the user, what it fired."""
    dify_session: tuple[str, int] | None
    """``(conversation_id, started_at)``, unless none or older than 24 hours."""


class MessageStore:
    """Messages, deliveries and Dify sessions (thread safe)."""

    def __init__(self, connection: sqlite3.Connection, *, clock_ms: Callable[[], int] = _now_ms):
        self._db = connection
        self._lock = threading.Lock()
        self.clock_ms = clock_ms

    @classmethod
    def open(cls, path: Path, *, clock_ms: Callable[[], int] = _now_ms) -> MessageStore:
        try:
            connection = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorError(
                f"cannot keep the emulator's messages in {path}: {exc}",
                hint="delete the file to start afresh, or pass another --db",
            ) from exc
        return cls(connection, clock_ms=clock_ms)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # messages --------------------------------------------------------------------------------

    def add(self, app_key: str, message: Message) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO messages (uid, app_key, from_user, to_user, object_name, content,"
                " sent_at, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.uid,
                    app_key,
                    message.from_user,
                    message.to_user,
                    message.object_name,
                    message.content,
                    message.sent_at,
                    message.reply_to,
                ),
            )

    def conversation(self, app_key: str, user: str, bot: str) -> Conversation:
        """The messages from ``user`` to ``bot`` and back (oldest first), what each of the
        user's messages fired, and the Dify session, read at one moment: every write goes
        through this store's lock, so a reply stored and its delivery settled by the server
        thread are seen both or neither (read one by one, a caller could see the delivery
        settled and the reply missing)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT uid, from_user, to_user, object_name, content, sent_at, reply_to "
                "FROM messages WHERE app_key = ? AND ((from_user = ? AND to_user = ?) OR "
                "(from_user = ? AND to_user = ?)) ORDER BY seq",
                (app_key, user, bot, bot, user),
            ).fetchall()
            messages = [Message(*row) for row in rows]
            deliveries = self._deliveries([m.uid for m in messages if m.from_user == user])
            session = self._dify_session(app_key, user, bot)
        return Conversation(messages, deliveries, session)

    # users -----------------------------------------------------------------------------------

    def register(
        self, app_key: str, user_id: str, name: str, portrait_uri: str, token_digest: str
    ) -> None:
        """Register ``user_id`` (or update its name and portrait), recording the digest of the
        token just issued (never the token)."""
        now = self.clock_ms()
        with self._lock:
            self._db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (app_key, user_id)"
                " DO UPDATE SET name = excluded.name, portrait_uri = excluded.portrait_uri,"
                " token_digest = excluded.token_digest, tokens = tokens + 1,"
                " updated_at = excluded.updated_at",
                (app_key, user_id, name, portrait_uri, token_digest, now, now),
            )

    def users(self, app_key: str | None) -> list[dict[str, Any]]:
        """The registered users (of ``app_key``, or of every app), oldest first: ``{appKey,
        userId, name, portraitUri, tokensIssued, registeredAt, updatedAt}``."""
        where, args = ("WHERE app_key = ?", (app_key,)) if app_key else ("", ())
        with self._lock:
            rows = self._db.execute(
                "SELECT app_key, user_id, name, portrait_uri, tokens, registered_at, updated_at"
                f" FROM users {where} ORDER BY registered_at, rowid",
                args,
            ).fetchall()
        names = ("appKey", "userId", "name", "portraitUri", "tokensIssued", "registeredAt")
        return [dict(zip((*names, "updatedAt"), row, strict=True)) for row in rows]

    # deliveries ------------------------------------------------------------------------------

    def add_delivery(
        self, uid: str, integration: str, target: str, status: DeliveryStatus, detail: str
    ) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO deliveries (message_uid, integration, target, status, detail,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (uid, integration, target, status, detail, self.clock_ms()),
            )
            return int(cursor.lastrowid or 0)

    def settle_delivery(self, delivery: int, status: DeliveryStatus, detail: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET status = ?, detail = ?, updated_at = ? WHERE seq = ?",
                (status, detail, self.clock_ms(), delivery),
            )

    def _deliveries(self, uids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Per message UID, what it fired: ``{integration, target, status, detail}`` (the
        caller holds the lock)."""
        found: dict[str, list[dict[str, Any]]] = {uid: [] for uid in uids}
        if not uids:
            return found
        marks = ", ".join("?" * len(uids))
        rows = self._db.execute(
            "SELECT message_uid, integration, target, status, detail FROM deliveries "
            f"WHERE message_uid IN ({marks}) ORDER BY seq",
            uids,
        ).fetchall()
        for uid, integration, target, status, detail in rows:
            found[uid].append(
                {"integration": integration, "target": target, "status": status, "detail": detail}
            )
        return found

    # Dify sessions -----------------------------------------------------------------------------

    def dify_session(self, app_key: str, user: str, bot: str) -> tuple[str, int] | None:
        """``(conversation_id, started_at)`` kept for ``user`` and ``bot``, unless older than
        24 hours."""
        with self._lock:
            return self._dify_session(app_key, user, bot)

    def _dify_session(self, app_key: str, user: str, bot: str) -> tuple[str, int] | None:
        row = self._db.execute(
            "SELECT conversation_id, started_at FROM dify_sessions "
            "WHERE app_key = ? AND user_id = ? AND bot_id = ?",
            (app_key, user, bot),
        ).fetchone()
        if row is None or self.clock_ms() - int(row[1]) >= CONVERSATION_TTL_MS:
            return None
        return str(row[0]), int(row[1])

    def keep_dify_session(self, app_key: str, user: str, bot: str, conversation_id: str) -> None:
        """Remember a conversation that just started (now)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO dify_sessions VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_key,"
                " user_id, bot_id) DO UPDATE SET conversation_id = excluded.conversation_id,"
                " started_at = excluded.started_at",
                (app_key, user, bot, conversation_id, self.clock_ms()),
            )

    def forget_dify_session(self, app_key: str, user: str, bot: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM dify_sessions WHERE app_key = ? AND user_id = ? AND bot_id = ?",
                (app_key, user, bot),
            )
