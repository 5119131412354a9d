"""The outbox of status events on SQLite: the dispatchers' statements.

Taking rows runs in a BEGIN IMMEDIATE transaction: SQLite has one writer at a time, so the
statement sees every lease given before it, across the processes sharing the file. The write
lock is held for one statement, never while events are being delivered, and not taken at all
when a read finds no row ready (an idle poll).

Unlike the repository's calls, each thread keeps its connection: a new connection parses the
schema again at its first statement, which cost a dispatcher's poll more than its work. These
connections commit with `synchronous = NORMAL` (no flush per commit; WAL keeps the file
consistent): a lease or a delete lost to a power cut only sends an event again, which at least
once allows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from media_worker.errors import RepositoryUnavailableError
from media_worker.events.outbox import OutboxEntry, Settled, TargetDepth
from media_worker.repository.outbox_rows import outbox_entries, outbox_entry, target_depths
from media_worker.sqlite_files import open_sqlite, utc_text

T = TypeVar("T")
COLUMNS = ('"seq", "id", "target", "mediaId", "payload", json_extract("payload", \'$.type\') '
           'AS "type", "attempts", "createdAt"')


class SqliteOutbox:
    """OutboxStore on the SQLite file of the embedded default."""

    def __init__(self, path: Path, table: str) -> None:
        """`table` is a quoted identifier."""
        self._path = path
        self._table = table
        self._local = threading.local()

    def lease(self, target: str, limit: int, lease_seconds: float) -> list[OutboxEntry]:
        now = datetime.now(UTC)
        ready = self._run(lambda conn: conn.execute(
            f'SELECT EXISTS (SELECT 1 FROM {self._table} WHERE "target" = ? AND '
            '("leaseUntil" IS NULL OR "leaseUntil" <= ?))', (target, utc_text(now))).fetchone())
        if not (ready and ready[0]):
            return []
        query = (
            f'UPDATE {self._table} SET "leaseUntil" = :lease WHERE "seq" IN ('
            f'SELECT o."seq" FROM {self._table} o WHERE o."target" = :target AND NOT EXISTS ('
            f'SELECT 1 FROM {self._table} b WHERE b."target" = o."target" AND '
            'b."mediaId" = o."mediaId" AND b."leaseUntil" > :now) '
            f'ORDER BY o."seq" LIMIT :limit) RETURNING {COLUMNS}')
        params = {"target": target, "limit": limit, "now": utc_text(now),
                  "lease": utc_text(now + timedelta(seconds=lease_seconds))}
        rows = self._transaction(lambda conn: conn.execute(query, params).fetchall())
        return outbox_entries(rows)

    def settle(self, settled: Settled) -> None:
        now = datetime.now(UTC)

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(f'DELETE FROM {self._table} WHERE "seq" = ?',
                             [(seq,) for seq in settled.delivered])
            conn.executemany(
                f'UPDATE {self._table} SET "attempts" = "attempts" + 1, "leaseUntil" = ? '
                'WHERE "seq" = ?',
                [(utc_text(now + timedelta(seconds=delay)), seq)
                 for seq, delay in settled.retry_after.items()])
            conn.executemany(f'UPDATE {self._table} SET "leaseUntil" = NULL WHERE "seq" = ?',
                             [(seq,) for seq in settled.untried])

        if settled.delivered or settled.retry_after or settled.untried:
            self._transaction(work)

    def expire(self, max_age_seconds: float, limit: int) -> list[OutboxEntry]:
        cutoff = utc_text(datetime.now(UTC) - timedelta(seconds=max_age_seconds))
        query = (f'DELETE FROM {self._table} WHERE "seq" IN (SELECT "seq" FROM {self._table} '
                 'WHERE "createdAt" < :cutoff ORDER BY "seq" LIMIT :limit) '
                 f"RETURNING {COLUMNS}")
        rows = self._transaction(
            lambda conn: conn.execute(query, {"cutoff": cutoff, "limit": limit}).fetchall())
        return outbox_entries(rows)

    def depth(self) -> dict[str, TargetDepth]:
        rows = self._run(lambda conn: conn.execute(
            f'SELECT "target", count(*) AS n, min("createdAt") AS oldest FROM {self._table} '
            'GROUP BY "target"').fetchall())
        return target_depths(rows)

    def follow(self, after_seq: int, limit: int) -> list[OutboxEntry]:
        rows = self._run(lambda conn: conn.execute(
            f'SELECT {COLUMNS} FROM {self._table} WHERE "seq" > ? ORDER BY "seq" LIMIT ?',
            (after_seq, limit)).fetchall())
        return [outbox_entry(row) for row in rows]

    def latest_seq(self) -> int:
        # AUTOINCREMENT's counter, not max(seq): the rows before may all be delivered and gone.
        row = self._run(lambda conn: conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (self._table.strip('"'),)
        ).fetchone())
        return int(row["seq"]) if row else 0

    # --- plumbing -----------------------------------------------------------------------
    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self._run(run)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return work(self._connection())
        except sqlite3.OperationalError as exc:
            self._drop()  # a connection that failed is not trusted again
            raise RepositoryUnavailableError(f"embedded database unavailable: {exc}") from None

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_sqlite(self._path)
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
