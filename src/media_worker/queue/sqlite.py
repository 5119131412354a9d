"""The queue port on one SQLite file: SQS semantics with no server to run.

Each message is a row. A receive hides it (`visible_at` in the future), counts the delivery and
gives it a fresh receipt handle; only the current handle may delete it or change its
visibility, exactly as on SQS, so a worker that lost a message to a timeout cannot delete the
next worker's delivery. Dead letters stay in the same table (`queue = 'dead'`), which makes a
move or a redrive one UPDATE.

Several threads share one connection behind a lock; several processes share the file through
SQLite's own locking (WAL, busy timeout, `BEGIN IMMEDIATE` around every read-then-write).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from media_worker.errors import QueueUnavailableError
from media_worker.queue.port import QueueDepth, ReceivedMessage
from media_worker.sqlite_files import BUSY_TIMEOUT_MS

MAX_WAIT_SECONDS = 20
MAX_BATCH = 10
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200
# How often a long poll looks for messages sent by another process (a send in this process
# wakes it at once).
POLL_INTERVAL_SECONDS = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT    NOT NULL UNIQUE,
    queue          TEXT    NOT NULL DEFAULT 'main' CHECK (queue IN ('main', 'dead')),
    body           TEXT    NOT NULL,
    sent_at        REAL    NOT NULL,
    visible_at     REAL    NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt_handle TEXT    UNIQUE,
    reason         TEXT,
    dead_at        REAL,
    attributes     TEXT  -- JSON object of string attributes, NULL when none were sent
);
CREATE INDEX IF NOT EXISTS messages_in_order ON messages (queue, seq, visible_at);
"""
# Files made before message attributes existed get the column on first open.
ATTRIBUTES_COLUMN = "ALTER TABLE messages ADD COLUMN attributes TEXT"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


class SqliteQueue:
    """A MessageQueue in a SQLite file, with a built-in dead-letter queue."""

    def __init__(
        self,
        path: Path,
        *,
        visibility_timeout: int = 300,
        max_receive_count: int | None = None,
    ) -> None:
        if max_receive_count is not None and max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        self._path = Path(path)
        self._visibility_timeout = _clamp(visibility_timeout, 0, MAX_VISIBILITY_SECONDS)
        self._max_receive_count = max_receive_count
        self._lock = threading.Lock()
        # Wakes a long poll in this process as soon as a message may have become visible.
        self._arrived = threading.Condition(self._lock)
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        with self._lock, self._translated():
            self._conn = self._open()

    # --- the port ---------------------------------------------------------------------------
    @property
    def has_dead_letter(self) -> bool:
        return True

    def send(self, body: str, delay_seconds: int = 0,
             attributes: Mapping[str, str] | None = None) -> str:
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be 0-{MAX_DELAY_SECONDS}, not {delay_seconds}")
        message_id = str(uuid.uuid4())
        now = time.time()
        with self._statement() as conn:
            conn.execute(
                "INSERT INTO messages (message_id, body, sent_at, visible_at, attributes)"
                " VALUES (?, ?, ?, ?, ?)",
                (message_id, body, now, now + delay_seconds,
                 json.dumps(dict(attributes)) if attributes else None),
            )
            self._arrived.notify_all()
        return message_id

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        limit = _clamp(max_messages, 1, MAX_BATCH)
        deadline = time.monotonic() + min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        while True:
            messages = self._receive_once(limit)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with self._arrived:
                self._arrived.wait(min(POLL_INTERVAL_SECONDS, remaining))

    def delete(self, message: ReceivedMessage) -> None:
        with self._statement() as conn:
            conn.execute("DELETE FROM messages WHERE receipt_handle = ? AND queue = 'main'",
                         (message.receipt_handle,))

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        timeout = _clamp(timeout_seconds, 0, MAX_VISIBILITY_SECONDS)
        with self._statement() as conn:
            conn.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt_handle = ? AND queue = 'main'",
                (time.time() + timeout, message.receipt_handle),
            )
            if timeout == 0:
                self._arrived.notify_all()

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        with self._statement() as conn:
            conn.execute(
                "UPDATE messages SET queue = 'dead', reason = ?, dead_at = ?,"
                " receipt_handle = NULL WHERE receipt_handle = ? AND queue = 'main'",
                (reason, time.time(), message.receipt_handle),
            )

    def depth(self) -> QueueDepth:
        with self._statement() as conn:
            row = conn.execute(
                "SELECT"
                " COALESCE(SUM(queue = 'main' AND visible_at <= :now), 0),"
                " COALESCE(SUM(queue = 'main' AND visible_at > :now AND receive_count > 0), 0),"
                " COALESCE(SUM(queue = 'main' AND visible_at > :now AND receive_count = 0), 0),"
                " COALESCE(SUM(queue = 'dead'), 0)"
                " FROM messages",
                {"now": time.time()},
            ).fetchone()
        return QueueDepth(visible=row[0], in_flight=row[1], delayed=row[2], dead_letter=row[3])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._arrived.notify_all()

    # --- operator commands (media-worker dlq) -------------------------------------------------
    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """The oldest `limit` dead letters as (message id, body, reason)."""
        with self._statement() as conn:
            rows = conn.execute(
                "SELECT message_id, body, COALESCE(reason, '') FROM messages"
                " WHERE queue = 'dead' ORDER BY dead_at, seq LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        return [(str(mid), str(body), str(reason)) for mid, body, reason in rows]

    def redrive_dead_letters(self) -> int:
        """Move every dead letter back to the main queue as if newly sent; returns how many.

        The receive count starts again at zero, or a redrive policy would bounce it straight
        back.
        """
        with self._statement() as conn:
            moved = conn.execute(
                "UPDATE messages SET queue = 'main', visible_at = ?, receive_count = 0,"
                " reason = NULL, dead_at = NULL, receipt_handle = NULL WHERE queue = 'dead'",
                (time.time(),),
            ).rowcount
            self._arrived.notify_all()
        return moved

    def purge_dead_letters(self) -> int:
        """Delete every dead letter; returns how many."""
        with self._statement() as conn:
            return conn.execute("DELETE FROM messages WHERE queue = 'dead'").rowcount

    # --- receiving ----------------------------------------------------------------------------
    def _receive_once(self, limit: int) -> list[ReceivedMessage]:
        """One look at the queue; the write lock is taken only when something is visible."""
        with self._statement() as conn:
            if not self._anything_visible(conn):
                return []
            conn.execute("BEGIN IMMEDIATE")
            try:
                messages = self._claim(conn, limit)
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.commit()
        return messages

    @staticmethod
    def _anything_visible(conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = 'main' AND visible_at <= ?)",
            (time.time(),),
        ).fetchone()
        return bool(row[0])

    def _claim(self, conn: sqlite3.Connection, limit: int) -> list[ReceivedMessage]:
        """Hide up to `limit` visible messages in sent order (inside BEGIN IMMEDIATE).

        Messages past the redrive policy's receive count go to the dead letters instead, and
        the scan goes on past them, so a batch is not cut short by them.
        """
        now = time.time()
        claimed: list[ReceivedMessage] = []
        after = 0
        while len(claimed) < limit:
            rows = conn.execute(
                "SELECT seq, message_id, body, receive_count, sent_at, attributes FROM messages"
                " WHERE queue = 'main' AND seq > ? AND visible_at <= ? ORDER BY seq LIMIT ?",
                (after, now, limit - len(claimed)),
            ).fetchall()
            if not rows:
                break
            for seq, message_id, body, count, sent_at, attributes in rows:
                after = seq
                if self._max_receive_count is not None and count >= self._max_receive_count:
                    self._move_to_dead(conn, seq, count, now)
                    continue
                handle = secrets.token_urlsafe(24)
                conn.execute(
                    "UPDATE messages SET visible_at = ?, receive_count = ?, receipt_handle = ?"
                    " WHERE seq = ?",
                    (now + self._visibility_timeout, count + 1, handle, seq),
                )
                claimed.append(ReceivedMessage(str(message_id), handle, str(body), count + 1,
                                               float(sent_at),
                                               json.loads(attributes) if attributes else {}))
        return claimed

    def _move_to_dead(self, conn: sqlite3.Connection, seq: int, count: int, now: float) -> None:
        reason = f"received {count} times (max_receive_count {self._max_receive_count})"
        conn.execute(
            "UPDATE messages SET queue = 'dead', reason = ?, dead_at = ?, receipt_handle = NULL"
            " WHERE seq = ?",
            (reason, now, seq),
        )

    # --- connection ---------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """Create the directory, the file and the schema, in a mode many processes can share."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged send survives a power cut, or a PENDING row would wait
            # forever for a job message that was lost.
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(SCHEMA)
            _add_attributes_column(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _statement(self) -> Iterator[sqlite3.Connection]:
        """The connection, held exclusively by this thread, with errors translated."""
        with self._lock, self._translated():
            yield self._connection()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise QueueUnavailableError(f"embedded queue {self._path} is closed")
        if self._conn is None or self._pid != os.getpid():
            # A connection must not cross a fork: the child opens its own.
            self._conn, self._pid = self._open(), os.getpid()
        return self._conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite and file-system failures (locked, disk I/O, full, unreadable) → unavailable."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            raise QueueUnavailableError(f"embedded queue {self._path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise
            raise QueueUnavailableError(f"embedded queue {self._path}: {exc}") from exc


def _add_attributes_column(conn: sqlite3.Connection) -> None:
    """Bring a queue file from before message attributes up to date; another process doing
    the same at the same moment is not an error."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "attributes" in columns:
        return
    try:
        conn.execute(ATTRIBUTES_COLUMN)
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise
