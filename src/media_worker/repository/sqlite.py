"""The media repository of the embedded default: the same table and statements on SQLite.

Each call opens its own short-lived connection (cheap for SQLite), so threads and processes
share the file safely; WAL mode lets readers run while one writer commits. A single UPDATE
with RETURNING is atomic in SQLite, which is all the claim needs. While a status-event target
is configured, a status change and its outbox rows share one write transaction
(sqlite_events.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from media_worker.errors import RepositoryUnavailableError, SchemaMissingError
from media_worker.events.outbox import EventRecording, outbox_table_name
from media_worker.repository.leadership import FileLeadership
from media_worker.repository.outbox_sqlite import SqliteOutbox
from media_worker.repository.phash_sqlite import (
    SqlitePerceptualIndex,
    hash_columns,
    table_columns,
)
from media_worker.repository.port import Claim, NewMedia
from media_worker.repository.rows import (
    HashColumns,
    as_utc,
    checked_table_name,
    hash_columns_warnings,
    hash_values,
    merged_metadata,
    migration_sql,
    optional_table_name,
    record_from_row,
    thumbnails_json,
)
from media_worker.repository.sqlite_events import SqliteEvents
from media_worker.similarity import QUARTER_COLUMNS
from media_worker.sqlite_files import sqlite_connection
from media_worker.sqlite_files import utc_text as timestamp
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData

T = TypeVar("T")
# Fenced like the PostgreSQL adapter: see FENCE there.
FENCE = (
    "\"id\" = :id AND \"attempts\" = :attempt AND \"status\" IN ('PROCESSING', :target)"
)


class SqliteMediaRepository:
    """MediaRepository on a SQLite file."""

    def __init__(self, path: Path, *, table: str = "Media",
                 events: EventRecording | None = None) -> None:
        """`events`: its targets get outbox rows (SQLite has no NOTIFY: the channel is
        ignored)."""
        self._path = Path(path)
        self._table = f'"{checked_table_name(table)}"'
        self._index = f'"{checked_table_name(table)}_status_idx"'
        targets = (events or EventRecording()).targets
        self._outbox_name = optional_table_name(outbox_table_name(table),
                                                required=bool(targets))
        self._outbox = f'"{self._outbox_name}"'
        self._events = SqliteEvents(targets, table=self._table, outbox=self._outbox)
        self._hashes: HashColumns | None = None  # the hash's columns (looked up once)

    def migrate(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        script = migration_sql("sqlite")
        if self._outbox_name is None:  # a MEDIA_TABLE too long to name its outbox after
            script = script[:script.index("-- The outbox of status events")]
        name = self._table.strip('"')

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            present = table_columns(conn, name) if _table_exists(conn, name) else None
            add = "".join(f'ALTER TABLE {self._table} ADD COLUMN "{column}" INTEGER;\n'
                          for column in HashColumns.QUARTERS.names
                          if present is not None and column not in present)
            conn.executescript(script.format(
                table=self._table, status_index=self._index, add_phash=add,
                phash_index=f'"{name}_phash_id_idx"', outbox=self._outbox,
                **{f"{column}_index": f'"{name}_{column}_phash_idx"'
                   for column in QUARTER_COLUMNS},
                outbox_index=f'"{self._outbox_name}_target_mediaId_seq_idx"'))

        try:
            self._run(run)
        except RepositoryUnavailableError as exc:  # another process added it meanwhile
            if "duplicate column" not in str(exc):
                raise
            self._run(run)
        self._hashes = HashColumns.QUARTERS

    def verify_schema(self) -> list[str]:
        """The media table, and the outbox too while a target is configured; a table without
        "phash" or its quarters is looked up here once and only warned of."""
        names = [self._table] + ([self._outbox] if self._events.enabled else [])
        for name in names:
            row = self._one("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND "
                            "name = :name", {"name": name.strip('"')})
            if not row or not row["n"]:
                raise SchemaMissingError(f"table {name} does not exist in {self._path}; "
                                         "run `media-worker migrate`")
        self._hashes = None
        return hash_columns_warnings(self._table.strip('"'), self._hash_columns())

    def try_lead(self, name: str) -> FileLeadership | None:
        return FileLeadership.try_take(self._path, name)

    def insert(self, media: NewMedia) -> MediaRecord:
        now = timestamp()
        row = self._one(
            f'INSERT INTO {self._table} ("id", "bucket", "key", "mimeType", "size", "status", '
            '"attempts", "createdAt", "updatedAt") '
            "VALUES (:id, :bucket, :key, :mime, :size, 'PENDING', 0, :now, :now) RETURNING *",
            {"id": media.id, "bucket": media.bucket, "key": media.key,
             "mime": media.mime_type, "size": media.size, "now": now})
        assert row is not None
        return record_from_row(row)

    def get(self, media_id: str) -> MediaRecord | None:
        row = self._one(f'SELECT * FROM {self._table} WHERE "id" = :id', {"id": media_id})
        return record_from_row(row) if row else None

    def claim(self, media_id: str, lease_seconds: int, job_id: str | None = None
              ) -> Claim | None:
        now = datetime.now(UTC)
        query = (f"UPDATE {self._table} SET \"status\" = 'PROCESSING', \"attempts\" = "
                 '"attempts" + 1, "leaseUntil" = :lease, "updatedAt" = :now '
                 "WHERE \"id\" = :id AND (\"status\" = 'PENDING' OR "
                 "(\"status\" = 'PROCESSING' AND \"leaseUntil\" < :now)) RETURNING *")
        params = {"id": media_id, "now": timestamp(now),
                  "lease": timestamp(now + timedelta(seconds=lease_seconds))}
        if self._events.enabled:
            row = self._run(lambda conn: self._events.transition(
                conn, lambda: _first(conn.execute(query, params)), media_id=media_id,
                job_id=job_id))
        else:
            row = self._one(query, params)
        if row is None:
            return None
        record = record_from_row(row)
        return Claim(media_id=media_id, attempt=record.attempts, record=record, job_id=job_id)

    def extend_lease(self, claim: Claim, lease_seconds: int) -> bool:
        lease = datetime.now(UTC) + timedelta(seconds=lease_seconds)
        return self._fenced('"leaseUntil" = :lease', claim, "PROCESSING", event=False,
                            lease=timestamp(lease))

    def complete(self, claim: Claim, thumbnails: list[ThumbnailData],
                 metadata: dict[str, Any]) -> bool:
        """Merges the worker's metadata keys over the row's own, read and written in one
        write transaction (SQLite's json_patch would drop keys whose value is null)."""
        hashes = "".join(f', "{name}" = :{name}' for name in self._hash_columns().names)
        query = (f"UPDATE {self._table} SET \"status\" = 'READY', \"thumbnails\" = :thumbs, "
                 '"metadata" = :meta, "error" = NULL, "leaseUntil" = NULL, '
                 f'"processedAt" = :now, "updatedAt" = :now{hashes} WHERE {FENCE}')

        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute(f'SELECT "metadata" FROM {self._table} WHERE "id" = :id',
                               {"id": claim.media_id}).fetchone()
            params = {"id": claim.media_id, "attempt": claim.attempt, "target": "READY",
                      "now": timestamp(), "thumbs": json.dumps(thumbnails_json(thumbnails)),
                      "meta": json.dumps(merged_metadata(row[0] if row else None, metadata)),
                      **hash_values(metadata)}
            return conn.execute(query, params).rowcount == 1

        return self._run(lambda conn: self._events.transition(
            conn, lambda: write(conn), media_id=claim.media_id, job_id=claim.job_id,
            changed_from="PROCESSING"))

    def fail(self, claim: Claim, error: str) -> bool:
        return self._fenced(
            "\"status\" = 'FAILED', \"error\" = :error, \"leaseUntil\" = NULL, "
            '"processedAt" = :now', claim, "FAILED", error=error)

    def release(self, claim: Claim, error: str) -> bool:
        return self._fenced(
            "\"status\" = 'PENDING', \"error\" = :error, \"leaseUntil\" = NULL", claim,
            "PENDING", error=error)

    def count_by_status(self) -> dict[MediaStatus, int]:
        counts = dict.fromkeys(MediaStatus, 0)
        for row in self._all(
            f'SELECT "status", count(*) AS n FROM {self._table} GROUP BY "status"', {}
        ):
            counts[MediaStatus(row["status"])] = row["n"]
        return counts

    def list(self, status: MediaStatus | None = None, limit: int = 50, *,
             updated_after: datetime | None = None,
             updated_before: datetime | None = None) -> list[MediaRecord]:
        conditions = ["1 = 1"]
        if status:
            conditions.append('"status" = :status')
        if updated_after:
            conditions.append('"updatedAt" >= :after')
        if updated_before:
            conditions.append('"updatedAt" < :before')
        rows = self._all(
            f'SELECT * FROM {self._table} WHERE {" AND ".join(conditions)} '
            'ORDER BY "updatedAt" DESC, "createdAt" DESC, "id" LIMIT :limit',
            {"status": status.value if status else None, "limit": limit,
             "after": timestamp(updated_after) if updated_after else None,
             "before": timestamp(updated_before) if updated_before else None})
        return [record_from_row(row) for row in rows]

    def oldest_created_at(self, status: MediaStatus) -> datetime | None:
        row = self._one(f'SELECT min("createdAt") AS oldest FROM {self._table} '
                        'WHERE "status" = :s', {"s": status.value})
        return as_utc(row["oldest"]) if row else None

    def requeue(self, media_id: str) -> bool:
        query = (f"UPDATE {self._table} SET \"status\" = 'PENDING', \"attempts\" = 0, "
                 '"error" = NULL, "processedAt" = NULL, "updatedAt" = :now '
                 "WHERE \"id\" = :id AND \"status\" = 'FAILED'")
        params = {"id": media_id, "now": timestamp()}
        if self._events.enabled:
            return self._run(lambda conn: self._events.transition(
                conn, lambda: conn.execute(query, params).rowcount == 1, media_id=media_id,
                job_id=None))
        return self._run(lambda conn: conn.execute(query, params).rowcount) == 1

    def perceptual_index(self) -> SqlitePerceptualIndex:
        return SqlitePerceptualIndex(self._run, self._table, columns=self._hash_columns())

    def outbox(self) -> SqliteOutbox:
        if self._outbox_name is None:
            raise ValueError(f"MEDIA_TABLE {self._table} is too long to name its outbox")
        return SqliteOutbox(self._path, self._outbox)

    def close(self) -> None:
        """Nothing to release: connections live for one call."""

    # --- plumbing -----------------------------------------------------------------------
    def _hash_columns(self) -> HashColumns:
        """The hash's columns the table has: as verify_schema or migrate found, else looked
        up."""
        if self._hashes is None:
            name = self._table.strip('"')
            self._hashes = self._run(lambda conn: hash_columns(conn, name))
        return self._hashes

    def _fenced(self, assignments: str, claim: Claim, target: str, *, event: bool = True,
                **params: Any) -> bool:
        """A write only the claim's holder can make; a status change records its event."""
        query = f'UPDATE {self._table} SET {assignments}, "updatedAt" = :now WHERE {FENCE}'
        params |= {"id": claim.media_id, "attempt": claim.attempt, "target": target,
                   "now": timestamp()}
        if event and self._events.enabled:
            return self._run(lambda conn: self._events.transition(
                conn, lambda: conn.execute(query, params).rowcount == 1,
                media_id=claim.media_id, job_id=claim.job_id, changed_from="PROCESSING"))
        return self._run(lambda conn: conn.execute(query, params).rowcount) == 1

    def _one(self, query: str, params: dict[str, Any]) -> dict[str, Any] | None:
        def fetch(conn: sqlite3.Connection) -> dict[str, Any] | None:
            # fetchall steps the statement to its end, which is what commits an
            # UPDATE … RETURNING in autocommit mode.
            rows = conn.execute(query, params).fetchall()
            return dict(rows[0]) if rows else None

        return self._run(fetch)

    def _all(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._run(lambda conn: [dict(r) for r in conn.execute(query, params).fetchall()])

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._connection() as conn:
                return work(conn)
        except sqlite3.OperationalError as exc:
            raise RepositoryUnavailableError(f"embedded database unavailable: {exc}") from None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with sqlite_connection(self._path) as conn:
            yield conn


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def _first(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    """The first row of a statement stepped to its end (which is what finishes an UPDATE …
    RETURNING), as a dict."""
    rows = cursor.fetchall()
    return dict(rows[0]) if rows else None
