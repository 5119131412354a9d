"""The media repository on PostgreSQL (psycopg 3 + a connection pool), Prisma-shaped table.

Every status transition is a single conditional statement using the database's clock, so
workers on many machines agree on lease expiry and at most one claim wins. The same statement
records the transition's status event (outbox rows and NOTIFY: postgres_events.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from media_worker.errors import RepositoryUnavailableError, SchemaMissingError
from media_worker.events.outbox import EventRecording, outbox_table_name
from media_worker.observability.logging import short_error
from media_worker.repository.leadership import AdvisoryLeadership
from media_worker.repository.outbox_postgres import PostgresOutbox
from media_worker.repository.phash_postgres import PostgresPerceptualIndex, hash_columns
from media_worker.repository.port import Claim, NewMedia
from media_worker.repository.postgres_events import EventStatements
from media_worker.repository.rows import (
    HashColumns,
    as_utc,
    checked_table_name,
    hash_columns_warnings,
    hash_values,
    migration_sql,
    optional_table_name,
    record_from_row,
    thumbnails_json,
)
from media_worker.similarity import QUARTER_COLUMNS
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData

T = TypeVar("T")
# Prisma's DateTime columns are timestamp(3) holding UTC; an API may declare @db.Timestamptz.
# UTC written as a plain timestamp is right in the first whatever the server's TimeZone, and
# in the second because every session runs with TimeZone UTC (see _utc_session).
NOW = sql.SQL("(now() AT TIME ZONE 'UTC')")
# The worker's keys merged over the API's own (originalName, uploadedBy …), never replacing
# them; a non-object value the API left there is replaced.
MERGED_METADATA = sql.SQL(
    """CASE WHEN jsonb_typeof("metadata") = 'object' THEN "metadata" || %(meta)s """
    "ELSE %(meta)s END")
# A claim is held by (id, attempts) while the row stays PROCESSING: a worker whose lease was
# taken over sees its writes match nothing. A row already in the write's target state under the
# same attempt also matches, so a write retried after a lost reply still reports success.
FENCE = sql.SQL(
    '"id" = %(id)s AND "attempts" = %(attempt)s AND "status" IN (\'PROCESSING\', %(target)s)')


class PostgresMediaRepository:
    """MediaRepository on PostgreSQL."""

    def __init__(self, url: str, *, table: str = "Media", pool_min: int = 1, pool_max: int = 10,
                 connect_timeout: float = 5.0, retry_attempts: int = 3,
                 events: EventRecording | None = None) -> None:
        self._url = url
        self._connect_timeout = max(1, round(connect_timeout))
        self._name = checked_table_name(table)
        self._table = sql.Identifier(self._name)
        self._retry_attempts = retry_attempts
        self._hashes: HashColumns | None = None  # the hash's columns (looked up once)
        self._recording = events or EventRecording()
        self._outbox_name = optional_table_name(outbox_table_name(self._name),
                                                required=bool(self._recording.targets))
        self._events = EventStatements(self._recording, table=self._table,
                                       outbox=sql.Identifier(self._outbox_name or "-"), now=NOW)
        self._statements: dict[tuple[str, ...], str] = {}
        self._pool = ConnectionPool(
            url,
            min_size=pool_min,
            max_size=max(pool_min, pool_max),
            timeout=connect_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row,
                    "connect_timeout": max(1, round(connect_timeout))},
            configure=_utc_session,
            open=False,
            name="media-repository",
        )
        self._pool.open(wait=False)  # start-up does not hang while the database is down

    # --- schema -------------------------------------------------------------------------
    def migrate(self) -> None:
        script = migration_sql("postgres")
        if self._outbox_name is None:  # a MEDIA_TABLE too long to name its outbox after
            script = script[:script.index("-- The outbox of status events")]
        outbox = self._outbox_name or "-"
        query = sql.SQL(script).format(
            table=self._table,
            pkey=sql.Identifier(f"{self._name}_pkey"),
            status_index=sql.Identifier(f"{self._name}_status_idx"),
            phash_index=sql.Identifier(f"{self._name}_phash_id_idx"),
            **{f"{column}_index": sql.Identifier(f"{self._name}_{column}_phash_idx")
               for column in QUARTER_COLUMNS},
            outbox=sql.Identifier(outbox),
            outbox_pkey=sql.Identifier(f"{outbox}_pkey"),
            outbox_index=sql.Identifier(f"{outbox}_target_mediaId_seq_idx"),
        )
        # Two workers migrating at once could race on CREATE TYPE: serialise with a lock.
        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('media-worker-migrate'))")
                conn.execute(query)

        self._with_connection(run)
        self._hashes = HashColumns.QUARTERS
        self._statements.clear()  # `complete` now writes every hash column

    def verify_schema(self) -> list[str]:
        """The media table, and the outbox too while a target is configured; a table without
        "phash" or its quarters (an API that has not migrated yet) is looked up here once and
        only warned of."""
        names = [self._name]
        if self._recording.targets and self._outbox_name:
            names.append(self._outbox_name)
        for name in names:
            if not self._with_connection(partial(_table_exists, name=name)):
                raise SchemaMissingError(
                    f'table "{name}" does not exist in the database; create it with the '
                    "API's Prisma migrations (deploy/prisma/media.prisma) or "
                    "`media-worker migrate`")
        self._hashes = None
        return hash_columns_warnings(self._name, self._hash_columns())

    def try_lead(self, name: str) -> AdvisoryLeadership | None:
        try:
            return AdvisoryLeadership.try_take(self._url, name, self._connect_timeout)
        except psycopg.OperationalError as exc:
            raise RepositoryUnavailableError(f"database unavailable: {short_error(exc)}") from None

    # --- rows ---------------------------------------------------------------------------
    def insert(self, media: NewMedia) -> MediaRecord:
        query = sql.SQL(
            'INSERT INTO {t} ("id", "bucket", "key", "mimeType", "size", "createdAt", '
            '"updatedAt") VALUES (%(id)s, %(bucket)s, %(key)s, %(mime)s, %(size)s, {now}, {now}) '
            "RETURNING *"
        ).format(t=self._table, now=NOW)
        row = self._one(query, {"id": media.id, "bucket": media.bucket, "key": media.key,
                                "mime": media.mime_type, "size": media.size})
        assert row is not None
        return record_from_row(row)

    def get(self, media_id: str) -> MediaRecord | None:
        row = self._one(sql.SQL('SELECT * FROM {t} WHERE "id" = %(id)s').format(t=self._table),
                        {"id": media_id})
        return record_from_row(row) if row else None

    def claim(self, media_id: str, lease_seconds: int, job_id: str | None = None
              ) -> Claim | None:
        # Retried on connection errors: if a first try committed but its answer was lost, the
        # retry finds the row PROCESSING under our own lease and returns None; the lease then
        # expires and a redelivery claims it again. Nothing is processed twice at once.
        def build() -> sql.Composable:
            query = sql.SQL(
                'UPDATE {t} SET "status" = \'PROCESSING\', "attempts" = "attempts" + 1, '
                '"leaseUntil" = {now} + make_interval(secs => %(lease)s), "updatedAt" = {now} '
                'WHERE "id" = %(id)s AND ("status" = \'PENDING\' OR '
                '("status" = \'PROCESSING\' AND "leaseUntil" < {now})) RETURNING *'
            ).format(t=self._table, now=NOW)
            return (self._events.wrap(query, changed_from=None, row=True)
                    if self._events.enabled else query)

        row = self._one(self._statement(("claim",), build),
                        {"id": media_id, "lease": lease_seconds, "event_job": job_id})
        if row is None:
            return None
        record = record_from_row(row)
        return Claim(media_id=media_id, attempt=record.attempts, record=record, job_id=job_id)

    def extend_lease(self, claim: Claim, lease_seconds: int) -> bool:
        return self._fenced(
            sql.SQL('"leaseUntil" = {now} + make_interval(secs => %(lease)s)').format(now=NOW),
            claim, "PROCESSING", lease=lease_seconds, event=False)

    def complete(self, claim: Claim, thumbnails: list[ThumbnailData],
                 metadata: dict[str, Any]) -> bool:
        hashes = sql.SQL("").join(sql.SQL(", {} = {}").format(sql.Identifier(name),
                                                              sql.Placeholder(name))
                                  for name in self._hash_columns().names)
        return self._fenced(
            sql.SQL('"status" = \'READY\', "thumbnails" = %(thumbs)s, "metadata" = {merged}, '
                    '"error" = NULL, "leaseUntil" = NULL, "processedAt" = {now}{hashes}').format(
                        now=NOW, merged=MERGED_METADATA, hashes=hashes),
            claim, "READY", thumbs=Jsonb(thumbnails_json(thumbnails)), meta=Jsonb(metadata),
            **hash_values(metadata))

    def fail(self, claim: Claim, error: str) -> bool:
        return self._fenced(
            sql.SQL('"status" = \'FAILED\', "error" = %(error)s, "leaseUntil" = NULL, '
                    '"processedAt" = {now}').format(now=NOW),
            claim, "FAILED", error=error)

    def release(self, claim: Claim, error: str) -> bool:
        return self._fenced(
            sql.SQL('"status" = \'PENDING\', "error" = %(error)s, "leaseUntil" = NULL'),
            claim, "PENDING", error=error)

    def count_by_status(self) -> dict[MediaStatus, int]:
        query = sql.SQL('SELECT "status", count(*) AS n FROM {t} GROUP BY "status"').format(
            t=self._table)
        counts = dict.fromkeys(MediaStatus, 0)
        for row in self._all(query, {}):
            counts[MediaStatus(row["status"])] = row["n"]
        return counts

    def list(self, status: MediaStatus | None = None, limit: int = 50, *,
             updated_after: datetime | None = None,
             updated_before: datetime | None = None) -> list[MediaRecord]:
        conditions = [sql.SQL("TRUE")]
        if status:
            conditions.append(sql.SQL('"status" = %(status)s'))
        if updated_after:
            conditions.append(sql.SQL('"updatedAt" >= %(after)s'))
        if updated_before:
            conditions.append(sql.SQL('"updatedAt" < %(before)s'))
        query = sql.SQL(
            'SELECT * FROM {t} WHERE {where} ORDER BY "updatedAt" DESC, "createdAt" DESC, "id" '
            "LIMIT %(limit)s"
        ).format(t=self._table, where=sql.SQL(" AND ").join(conditions))
        rows = self._all(query, {"status": status.value if status else None, "limit": limit,
                                 "after": _naive_utc(updated_after),
                                 "before": _naive_utc(updated_before)})
        return [record_from_row(row) for row in rows]

    def oldest_created_at(self, status: MediaStatus) -> datetime | None:
        query = sql.SQL('SELECT min("createdAt") AS oldest FROM {t} WHERE "status" = %(s)s'
                        ).format(t=self._table)
        row = self._one(query, {"s": status.value})
        return as_utc(row["oldest"]) if row else None

    def requeue(self, media_id: str) -> bool:
        query: sql.Composable = sql.SQL(
            'UPDATE {t} SET "status" = \'PENDING\', "attempts" = 0, "error" = NULL, '
            '"processedAt" = NULL, "updatedAt" = {now} WHERE "id" = %(id)s AND '
            '"status" = \'FAILED\' RETURNING *').format(t=self._table, now=NOW)
        if self._events.enabled:
            query = self._events.wrap(query, changed_from=None)
        return len(self._all(query, {"id": media_id, "event_job": None})) == 1

    def perceptual_index(self) -> PostgresPerceptualIndex:
        return PostgresPerceptualIndex(self._with_connection, self._name,
                                       columns=self._hash_columns())

    def outbox(self) -> PostgresOutbox:
        if self._outbox_name is None:
            raise ValueError(f"MEDIA_TABLE {self._name!r} is too long to name its outbox")
        return PostgresOutbox(self._with_connection, self._outbox_name)

    def close(self) -> None:
        self._pool.close()

    # --- plumbing -----------------------------------------------------------------------
    def _hash_columns(self) -> HashColumns:
        """The hash's columns the table has: as verify_schema or migrate found, else looked
        up."""
        if self._hashes is None:
            self._hashes = self._with_connection(partial(hash_columns, table=self._name))
        return self._hashes

    def _fenced(self, assignments: sql.Composable, claim: Claim, target: str, *,
                event: bool = True, **params: Any) -> bool:
        """A write only the claim's holder can make; a status change records its event.
        One kind of write per `target` status (its statement is kept by that key)."""
        params |= {"id": claim.media_id, "attempt": claim.attempt, "target": target}
        recorded = event and self._events.enabled

        def build() -> sql.Composable:
            query = sql.SQL('UPDATE {t} SET {set}, "updatedAt" = {now} WHERE {fence}').format(
                t=self._table, set=assignments, now=NOW, fence=FENCE)
            if not recorded:
                return query
            return self._events.wrap(sql.SQL("{} RETURNING *").format(query),
                                     changed_from="PROCESSING")

        query = self._statement(("fenced", target, str(recorded)), build)
        if not recorded:
            return self._with_connection(lambda conn: conn.execute(query, params).rowcount) == 1
        return len(self._all(query, params | {"event_job": claim.job_id})) == 1

    def _statement(self, key: tuple[str, ...], build: Callable[[], sql.Composable]) -> str:
        """A transition's statement, composed once: the ones recording events are long, and
        composing them on every call would cost each job more CPU than the rest of its SQL."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build().as_string(None)
        return statement

    def _one(self, query: sql.Composable | str,
             params: dict[str, Any]) -> dict[str, Any] | None:
        return self._with_connection(lambda conn: conn.execute(query, params).fetchone())

    def _all(self, query: sql.Composable | str,
             params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._with_connection(lambda conn: conn.execute(query, params).fetchall())

    def _with_connection(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work` on a pooled connection, retrying connection failures with backoff."""
        retrying = Retrying(
            stop=stop_after_attempt(self._retry_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=2.0),  # full jitter
            retry=retry_if_exception_type(psycopg.OperationalError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self._pool.connection() as conn:
                    return work(conn)
        except psycopg.OperationalError as exc:
            raise RepositoryUnavailableError(f"database unavailable: {short_error(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover - Retrying reraises


def _table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found",
                       (sql.Identifier(name).as_string(conn),)).fetchone()
    return bool(row and row["found"])


def _utc_session(conn: psycopg.Connection[Any]) -> None:
    """Every session in UTC: timestamptz columns then read and compare in UTC too, and
    now() means the same instant in any column type."""
    conn.execute("SET TIME ZONE 'UTC'")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """Prisma's columns hold UTC without a zone: compare like with like."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
