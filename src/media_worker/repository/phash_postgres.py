"""Near-duplicate search on PostgreSQL: the Hamming distance computed by the server.

With the quarters ("phash0" to "phash3", similarity.py) a search is a few index lookups:
each quarter's index, (quarter, phash), is probed for the values within max_distance // 4 bits
of the query's quarter, the distance is checked on those index entries alone (an index-only
scan), and the table is read, through (phash, id), only for the hashes within the distance.
Rows whose quarters are NULL but not "phash" (READY before the quarters existed) are found by
the NULL entries of "phash0"'s index, those whose "phash" is NULL too (READY before it) by the
NULL entries of (phash, id), and searched by their `metadata.phash`: both cost what the rows
not yet filled in cost. Without the quarters, or past the distance their probes serve
(similarity.MAX_PROBE_RADIUS), every hash's distance is computed in one scan; on a table
without "phash" every READY row's metadata is read: correct, slower, until it is migrated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from media_worker.repository.port import SimilarMedia
from media_worker.repository.rows import HashColumns
from media_worker.similarity import QUARTER_COLUMNS, hash_bits, quarter_probes

T = TypeVar("T")
WithConnection = Callable[[Callable[[psycopg.Connection[Any]], T]], T]
# bit_count(bit) arrived in PostgreSQL 14; before it, the ones of the bit string are counted.
BIT_COUNT_SINCE = 140000
# metadata.phash as the column's bigint (the same 64 bits); NULL unless it is 16 hex digits,
# so a value the API wrote there can never fail the query.
FROM_METADATA = sql.SQL(
    """(CASE WHEN "metadata"->>'phash' ~ '^[0-9a-fA-F]{16}$' """
    """THEN ('x' || ("metadata"->>'phash'))::bit(64)::bigint END)""")
PHASH = sql.Identifier("phash")
READY = sql.SQL("\"status\" = 'READY'")


def hash_columns(conn: psycopg.Connection[Any], table: str) -> HashColumns:
    """Which of the hash's columns `table` (a plain identifier on the search path) has."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = ANY(%s) AND NOT attisdropped",
        (sql.Identifier(table).as_string(conn), list(HashColumns.QUARTERS.names))).fetchall()
    return HashColumns.of({row["attname"] for row in rows})


class PostgresPerceptualIndex:
    """PerceptualIndex on the media table of a PostgresMediaRepository."""

    def __init__(self, with_connection: WithConnection[Any], table: str, *,
                 columns: HashColumns) -> None:
        self._with_connection = with_connection
        self._table = sql.Identifier(table)
        self._columns = columns

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        query, params = self.similar_query(bits, max_distance)
        params |= {"exclude": exclude, "limit": limit}
        rows = self._with_connection(lambda conn: conn.execute(
            query(conn), params).fetchall())
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
    def similar_query(self, bits: int, max_distance: int
                      ) -> tuple[Callable[[psycopg.Connection[Any]], sql.Composable],
                                 dict[str, Any]]:
        """The statement of `similar` (for a connection: its server's bit count) and its
        parameters but %(exclude)s and %(limit)s; public for the bench's EXPLAIN."""
        signed = bits - (1 << 64) if bits >> 63 else bits
        params: dict[str, Any] = {"h": signed, "d": max_distance}
        probes = quarter_probes(bits, max_distance)
        if self._columns is HashColumns.QUARTERS and probes is not None:
            params |= {f"q{index}": values for index, values in enumerate(probes)}
            return self._looked_up, params
        return self._scanned, params

    def _looked_up(self, conn: psycopg.Connection[Any]) -> sql.Composable:
        """The hashes within the distance from the quarters' indexes (and, by the NULL
        entries of the first, those of rows without quarters yet), then their rows."""
        count = _counter(conn)
        near = count(PHASH)
        lookups = [sql.SQL("SELECT {p} FROM {t} WHERE {q} = ANY(%({n})s::integer[]) "
                           "AND {near} <= %(d)s").format(
                               p=PHASH, t=self._table, q=sql.Identifier(column),
                               n=sql.SQL(f"q{index}"), near=near)
                   for index, column in enumerate(QUARTER_COLUMNS)]
        lookups.append(sql.SQL("SELECT {p} FROM {t} WHERE {q} IS NULL AND {p} IS NOT NULL "
                               "AND {near} <= %(d)s").format(
                                   p=PHASH, t=self._table,
                                   q=sql.Identifier(QUARTER_COLUMNS[0]), near=near))
        found = sql.SQL(
            "SELECT m.\"id\", {distance} AS distance FROM ({hashes}) h "
            "JOIN {t} m ON m.\"phash\" = h.\"phash\"").format(
                distance=count(sql.SQL('m."phash"')),
                hashes=sql.SQL(" UNION ").join(lookups), t=self._table)
        return self._shown(sql.SQL(" UNION ALL ").join([found, self._from_metadata(count)]))

    def _scanned(self, conn: psycopg.Connection[Any]) -> sql.Composable:
        """Every hash's distance in one scan: the column's (its index read alone), then
        those of rows whose column is NULL, from their metadata."""
        count = _counter(conn)
        if self._columns is HashColumns.NONE:
            return self._shown(self._from_metadata(count))
        column = sql.SQL('SELECT "id", {d} AS distance FROM {t} WHERE {p} IS NOT NULL '
                         "AND {d} <= %(d)s").format(d=count(PHASH), t=self._table, p=PHASH)
        return self._shown(sql.SQL(" UNION ALL ").join([column, self._from_metadata(count)]))

    def _from_metadata(self, count: Callable[[sql.Composable], sql.Composable]
                       ) -> sql.Composable:
        """The READY rows within the distance by their metadata's hash, where the column is
        NULL (or missing)."""
        where = READY if self._columns is HashColumns.NONE else sql.SQL(
            '{p} IS NULL AND {ready}').format(p=PHASH, ready=READY)
        return sql.SQL('SELECT "id", {d} AS distance FROM {t} WHERE {w} AND {d} <= %(d)s'
                       ).format(d=count(FROM_METADATA), t=self._table, w=where)

    def _shown(self, near: sql.Composable) -> sql.Composable:
        """The nearest rows of `near` (id, distance) with what is shown of them."""
        return sql.SQL(
            "WITH near AS ({near}) "
            "SELECT n.\"id\", n.distance, m.\"key\", m.\"metadata\"->'width' AS width, "
            "m.\"metadata\"->'height' AS height FROM near n JOIN {t} m ON m.\"id\" = n.\"id\" "
            "WHERE m.{ready} AND n.\"id\" IS DISTINCT FROM %(exclude)s "
            "ORDER BY n.distance, n.\"id\" LIMIT %(limit)s").format(near=near, t=self._table,
                                                                  ready=READY)

    def _hash(self) -> sql.Composable:
        """A row's hash: the column, or its metadata's where the column is NULL or absent."""
        if self._columns is HashColumns.NONE:
            return FROM_METADATA
        return sql.SQL("COALESCE({}, {})").format(PHASH, FROM_METADATA)

    def _hashed(self) -> sql.Composable:
        return sql.SQL("{} AND {} IS NOT NULL").format(READY, self._hash())


def _counter(conn: psycopg.Connection[Any]) -> Callable[[sql.Composable], sql.Composable]:
    """The distance of a bigint to %(h)s in SQL the server runs."""
    return _bit_count if conn.info.server_version >= BIT_COUNT_SINCE else _ones_of_text


def _bit_count(value: sql.Composable) -> sql.Composable:
    return sql.SQL("bit_count(({} # %(h)s)::bit(64))").format(value)


def _ones_of_text(value: sql.Composable) -> sql.Composable:
    return sql.SQL("length(replace((({} # %(h)s)::bit(64))::text, '0', ''))").format(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
