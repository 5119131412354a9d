"""Near-duplicate search on the embedded default's SQLite table. SQLite has no bit count, so
the distances are computed here: with the quarters ("phash0" to "phash3", similarity.py) over
the hashes their indexes find for the query's probes, and those of rows without quarters yet
(the column, or metadata.phash where it is NULL); without them, or past the distance the
probes serve, over every READY row's hash. Only the rows within the distance are read whole,
so the answers are PostgreSQL's (tests/contract/test_phash_contract.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from media_worker.repository.port import SimilarMedia
from media_worker.repository.rows import HashColumns
from media_worker.similarity import QUARTER_COLUMNS, distance, hash_bits, quarter_probes

T = TypeVar("T")
Run = Callable[[Callable[[sqlite3.Connection], T]], T]
FROM_METADATA = "json_extract(\"metadata\", '$.phash')"
# metadata.phash counts only as 16 hex digits: a value the API wrote there is never misread.
HEX = "(typeof({value}) = 'text' AND {value} GLOB '" + "[0-9a-fA-F]" * 16 + "')"
READY = "\"status\" = 'READY'"
# The same test as no term the status index could serve (SQLite's unary +), so the quarters'
# indexes are what SQLite reads.
READY_UNINDEXED = "+" + READY


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of `table` (none when there is no such table)."""
    return {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def hash_columns(conn: sqlite3.Connection, table: str) -> HashColumns:
    """Which of the hash's columns `table` has."""
    return HashColumns.of(table_columns(conn, table))


class SqlitePerceptualIndex:
    """PerceptualIndex on the media table of a SqliteMediaRepository."""

    def __init__(self, run: Run[Any], table: str, *, columns: HashColumns) -> None:
        self._run = run
        self._table = table  # quoted
        self._columns = columns
        metadata = f"(CASE WHEN {HEX.format(value=FROM_METADATA)} THEN {FROM_METADATA} END)"
        self._hash = (metadata if columns is HashColumns.NONE
                      else f'COALESCE("phash", {metadata})')

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        probes = quarter_probes(bits, max_distance)
        if self._columns is HashColumns.QUARTERS and probes is not None:
            candidates: Iterable[tuple[str, int]] = self._looked_up(probes)
        else:
            candidates = (pair for batch in self.batches(10_000) for pair in batch)
        near = sorted((d, media_id) for media_id, value in candidates
                      if media_id != exclude and (d := distance(bits, value)) <= max_distance)
        near = near[:limit]
        details = self._details([media_id for _d, media_id in near])
        return [SimilarMedia(id=media_id, distance=d, **details[media_id])
                for d, media_id in near if media_id in details]

    def count(self) -> int:
        row = self._run(lambda conn: conn.execute(
            f"SELECT count(*) FROM {self._table} WHERE {self._hashed()}").fetchone())
        return int(row[0]) if row else 0

    def batches(self, size: int) -> Iterator[list[tuple[str, int]]]:
        query = (f'SELECT "id", {self._hash} AS h FROM {self._table} WHERE {self._hashed()} '
                 'AND "id" > :after ORDER BY "id" LIMIT :size')
        after = ""
        while True:
            rows = self._run(lambda conn, a=after: conn.execute(
                query, {"after": a, "size": size}).fetchall())
            if not rows:
                return
            yield [(row["id"], hash_bits(row["h"])) for row in rows]
            after = rows[-1]["id"]

    def _looked_up(self, probes: list[list[int]]) -> list[tuple[str, int]]:
        """(id, hash) of the READY rows holding a probed quarter, and of those without
        quarters yet (the column's hash, or metadata's where it is NULL too)."""
        lookups = [f'SELECT "id", "phash" FROM {self._table} WHERE "{column}" IN '
                   f"({', '.join(map(str, values))}) AND {READY_UNINDEXED}"
                   for column, values in zip(QUARTER_COLUMNS, probes, strict=True)]
        lookups.append(f'SELECT "id", {self._hash} FROM {self._table} WHERE '
                       f'"{QUARTER_COLUMNS[0]}" IS NULL AND {READY_UNINDEXED} '
                       f"AND {self._hash} IS NOT NULL")
        rows = self._run(lambda conn: conn.execute(" UNION ".join(lookups)).fetchall())
        return [(row[0], hash_bits(row[1])) for row in rows]

    def _hashed(self) -> str:
        return f"{READY} AND {self._hash} IS NOT NULL"

    def _details(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """key, width and height of the rows `ids` that are still READY."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._run(lambda conn: conn.execute(
            f"SELECT \"id\", \"key\", json_extract(\"metadata\", '$.width') AS width, "
            f"json_extract(\"metadata\", '$.height') AS height FROM {self._table} "
            f"WHERE {READY} AND \"id\" IN ({marks})", ids).fetchall())
        return {row["id"]: {"key": row["key"], "width": _int(row["width"]),
                            "height": _int(row["height"])} for row in rows}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None
