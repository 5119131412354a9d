"""Near-duplicate search on PostgreSQL: the Hamming distance computed by the server.

The distance to every hash is computed in one scan; with the column and its (phash, id)
index that scan reads the index alone, and the table only for the rows within the distance.
Rows whose column is NULL (READY before the column existed) are found by the same index's
NULL entries and searched by their `metadata.phash`. On a table without the column, every
READY row's metadata is read: correct, slower, until the table is migrated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from media_worker.similarity import SimilarMedia, hash_bits

T = TypeVar("T")
WithConnection = Callable[[Callable[[psycopg.Connection[Any]], T]], T]
# bit_count(bit) arrived in PostgreSQL 14; before it, the ones of the bit string are counted.
BIT_COUNT_SINCE = 140000
# metadata.phash as the column's bigint (the same 64 bits); NULL unless it is 16 hex digits,
# so a value the API wrote there can never fail the query.
FROM_METADATA = sql.SQL(
    """(CASE WHEN "metadata"->>'phash' ~ '^[0-9a-fA-F]{16}$' """
    """THEN ('x' || ("metadata"->>'phash'))::bit(64)::bigint END)""")


def has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    """Whether `table` (a plain identifier on the search path) has `column`."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s AND NOT attisdropped) AS found",
        (sql.Identifier(table).as_string(conn), column)).fetchone()
    return bool(row and row["found"])


class PostgresPerceptualIndex:
    """PerceptualIndex on the media table of a PostgresMediaRepository."""

    def __init__(self, with_connection: WithConnection[Any], table: str, *,
                 has_phash: bool) -> None:
        self._with_connection = with_connection
        self._table = sql.Identifier(table)
        self._has_phash = has_phash

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        signed = bits - (1 << 64) if bits >> 63 else bits
        rows = self._with_connection(lambda conn: conn.execute(
            self._similar_query(conn), {"h": signed, "d": max_distance,
                                        "exclude": exclude, "limit": limit}).fetchall())
        return [SimilarMedia(id=row["id"], distance=row["distance"], key=row["key"],
                             width=_int(row["width"]), height=_int(row["height"]))
                for row in rows]

    def count(self) -> int:
        query = sql.SQL("SELECT count(*) AS n FROM {t} WHERE {hashed}").format(
            t=self._table, hashed=self._hashed())
        row = self._with_connection(lambda conn: conn.execute(query).fetchone())
        return int(row["n"]) if row else 0

    def batches(self, size: int) -> Iterator[list[tuple[str, int]]]:
        query = sql.SQL(
            'SELECT "id", {h} AS h FROM {t} WHERE {hashed} AND "id" > %(after)s '
            'ORDER BY "id" LIMIT %(size)s').format(h=self._hash(), t=self._table,
                                                   hashed=self._hashed())
        after = ""
        while True:
            rows = self._with_connection(lambda conn, a=after: conn.execute(
                query, {"after": a, "size": size}).fetchall())
            if not rows:
                return
            yield [(row["id"], hash_bits(row["h"])) for row in rows]
            after = rows[-1]["id"]

    # --- SQL ----------------------------------------------------------------------------
    def _hash(self) -> sql.Composable:
        """A row's hash: the column, or its metadata's where the column is NULL or absent."""
        if not self._has_phash:
            return FROM_METADATA
        return sql.SQL('COALESCE("phash", {})').format(FROM_METADATA)

    def _hashed(self) -> sql.Composable:
        return sql.SQL("\"status\" = 'READY' AND {} IS NOT NULL").format(self._hash())

    def _similar_query(self, conn: psycopg.Connection[Any]) -> sql.Composable:
        """The rows within the distance (the column's from the index alone, then those whose
        column is NULL from their metadata), joined to the table for what is shown."""
        count = _bit_count if conn.info.server_version >= BIT_COUNT_SINCE else _ones_of_text
        ready = sql.SQL("\"status\" = 'READY'")
        if self._has_phash:
            branches = [(sql.SQL('"phash"'), sql.SQL('"phash" IS NOT NULL')),
                        (FROM_METADATA, sql.SQL('"phash" IS NULL AND {}').format(ready))]
        else:
            branches = [(FROM_METADATA, ready)]
        near = sql.SQL(" UNION ALL ").join(
            sql.SQL('SELECT "id", {d} AS distance FROM {t} WHERE {w} AND {d} <= %(d)s').format(
                d=count(value), t=self._table, w=where) for value, where in branches)
        return sql.SQL(
            "WITH near AS ({near}) "
            "SELECT n.\"id\", n.distance, m.\"key\", m.\"metadata\"->'width' AS width, "
            "m.\"metadata\"->'height' AS height FROM near n JOIN {t} m ON m.\"id\" = n.\"id\" "
            "WHERE m.\"status\" = 'READY' AND n.\"id\" IS DISTINCT FROM %(exclude)s "
            "ORDER BY n.distance, n.\"id\" LIMIT %(limit)s").format(near=near, t=self._table)


def _bit_count(value: sql.Composable) -> sql.Composable:
    return sql.SQL("bit_count(({} # %(h)s)::bit(64))").format(value)


def _ones_of_text(value: sql.Composable) -> sql.Composable:
    return sql.SQL("length(replace((({} # %(h)s)::bit(64))::text, '0', ''))").format(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
