"""The outbox of status events on PostgreSQL: the dispatchers' statements.

Taking rows is serialised per target by a transaction-scoped advisory lock: the statement that
takes rows then starts after the previous taker committed, so it sees every lease already
given and two replicas never hand out rows of the same (target, media) at once. Without the
lock, two takers planning from the same snapshot could both pick a media's next rows. The lock
is held for one short statement, never while events are being delivered, and is not taken at
all when a cheap look finds no row ready (an idle worker's poll is one statement; the look is
skipped while the last take found rows). Statements
are composed once, when the outbox is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from media_worker.events.outbox import OutboxEntry, Settled, TargetDepth
from media_worker.repository.outbox_rows import outbox_entries, outbox_entry, target_depths

T = TypeVar("T")
Run = Callable[[Callable[[psycopg.Connection[Any]], T]], T]
NOW = sql.SQL("(now() AT TIME ZONE 'UTC')")
COLUMNS = sql.SQL('"seq", "id", "target", "mediaId", "payload"::text AS "payload", '
                  "\"payload\"->>'type' AS \"type\", \"attempts\", \"createdAt\"")


class PostgresOutbox:
    """OutboxStore on the PostgreSQL table beside the media table."""

    def __init__(self, run: Run[Any], table: str) -> None:
        """`run` runs work on a pooled connection (the repository's, with its retries)."""
        self._run = run
        self._name = table
        self._table = sql.Identifier(table)
        o = self._table
        self._ready = _text(sql.SQL(
            'SELECT EXISTS (SELECT 1 FROM {o} WHERE "target" = %(target)s AND '
            '("leaseUntil" IS NULL OR "leaseUntil" <= {now})) AS "ready"').format(o=o, now=NOW))
        self._take = _text(sql.SQL(
            'UPDATE {o} SET "leaseUntil" = {now} + make_interval(secs => %(lease)s) '
            'WHERE "seq" IN (SELECT o."seq" FROM {o} o WHERE o."target" = %(target)s '
            'AND NOT EXISTS (SELECT 1 FROM {o} b WHERE b."target" = o."target" '
            'AND b."mediaId" = o."mediaId" AND b."leaseUntil" > {now}) '
            'ORDER BY o."seq" LIMIT %(limit)s) RETURNING {columns}'
        ).format(o=o, now=NOW, columns=COLUMNS))
        self._delete = _text(sql.SQL('DELETE FROM {o} WHERE "seq" = ANY(%(seqs)s)').format(o=o))
        self._retry = _text(sql.SQL(
            'UPDATE {o} AS o SET "attempts" = o."attempts" + 1, "leaseUntil" = {now} + '
            'make_interval(secs => d.delay) FROM unnest(%(seqs)s::bigint[], '
            '%(delays)s::float8[]) AS d(seq, delay) WHERE o."seq" = d.seq').format(o=o, now=NOW))
        self._release = _text(sql.SQL(
            'UPDATE {o} SET "leaseUntil" = NULL WHERE "seq" = ANY(%(seqs)s)').format(o=o))
        self._busy: set[str] = set()  # targets whose last take found rows

    def lease(self, target: str, limit: int, lease_seconds: float) -> list[OutboxEntry]:
        params = {"target": target, "limit": limit, "lease": lease_seconds}

        def work(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            if target not in self._busy:  # idle: one cheap look before the locking take
                ready = conn.execute(self._ready, params).fetchone()
                if not (ready and ready["ready"]):
                    return []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                             (f"media-worker-outbox:{self._name}:{target}",))
                return conn.execute(self._take, params).fetchall()

        rows = self._run(work)
        if rows:
            self._busy.add(target)
        else:
            self._busy.discard(target)
        return outbox_entries(rows)

    def settle(self, settled: Settled) -> None:
        statements: list[tuple[str, dict[str, Any]]] = []
        if settled.delivered:
            statements.append((self._delete, {"seqs": list(settled.delivered)}))
        if settled.retry_after:
            statements.append((self._retry, {"seqs": list(settled.retry_after),
                                             "delays": list(settled.retry_after.values())}))
        if settled.untried:
            statements.append((self._release, {"seqs": list(settled.untried)}))
        if not statements:
            return

        def work(conn: psycopg.Connection[Any]) -> None:
            if len(statements) == 1:  # one statement is a transaction of its own
                conn.execute(*statements[0])
                return
            with conn.transaction():
                for statement, params in statements:
                    conn.execute(statement, params)

        self._run(work)

    def expire(self, max_age_seconds: float, limit: int) -> list[OutboxEntry]:
        # By seq, the primary key: rows are written in createdAt order, so the oldest rows are
        # the first ones, found without an index on createdAt (which every insert would pay).
        query = sql.SQL(
            'DELETE FROM {o} WHERE "seq" IN (SELECT "seq" FROM {o} WHERE "createdAt" < '
            '{now} - make_interval(secs => %(age)s) ORDER BY "seq" LIMIT %(limit)s) '
            "RETURNING {columns}").format(o=self._table, now=NOW, columns=COLUMNS)
        params = {"age": max_age_seconds, "limit": limit}
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        return outbox_entries(rows)

    def depth(self) -> dict[str, TargetDepth]:
        query = sql.SQL('SELECT "target", count(*) AS n, min("createdAt") AS oldest FROM {o} '
                        'GROUP BY "target"').format(o=self._table)
        rows = self._run(lambda conn: conn.execute(query).fetchall())
        return target_depths(rows)

    def follow(self, after_seq: int, limit: int) -> list[OutboxEntry]:
        query = sql.SQL('SELECT {columns} FROM {o} WHERE "seq" > %(after)s ORDER BY "seq" '
                        "LIMIT %(limit)s").format(o=self._table, columns=COLUMNS)
        params = {"after": after_seq, "limit": limit}
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        return [outbox_entry(row) for row in rows]

    def latest_seq(self) -> int:
        # The sequence, not max(seq): the rows before may all be delivered and gone.
        query = sql.SQL("SELECT COALESCE((SELECT last_value FROM {s} WHERE is_called), 0) "
                        "AS seq").format(s=sql.Identifier(f"{self._name}_seq_seq"))
        row = self._run(lambda conn: conn.execute(query).fetchone())
        return int(row["seq"]) if row else 0


def _text(statement: sql.Composable) -> str:
    return statement.as_string(None)
