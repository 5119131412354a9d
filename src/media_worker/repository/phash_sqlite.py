"""Near-duplicate search on the embedded default's SQLite table: SQLite has no bit count, so
the distances are computed here, over the READY rows' hashes (the column, or metadata.phash
where it is NULL), and only the rows within the distance are read whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from media_worker.similarity import SimilarMedia, distance, hash_bits

T = TypeVar("T")
Run = Callable[[Callable[[sqlite3.Connection], T]], T]
FROM_METADATA = "json_extract(\"metadata\", '$.phash')"
# metadata.phash counts only as 16 hex digits: a value the API wrote there is never misread.
HEX = "(typeof({value}) = 'text' AND {value} GLOB '" + "[0-9a-fA-F]" * 16 + "')"


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether `table` has `column` (False when there is no such table)."""
    return any(row[1] == column for row in conn.execute(f'PRAGMA table_info("{table}")'))


class SqlitePerceptualIndex:
    """PerceptualIndex on the media table of a SqliteMediaRepository."""

    def __init__(self, run: Run[Any], table: str, *, has_phash: bool) -> None:
        self._run = run
        self._table = table  # quoted
        metadata = f"(CASE WHEN {HEX.format(value=FROM_METADATA)} THEN {FROM_METADATA} END)"
        self._hash = f'COALESCE("phash", {metadata})' if has_phash else metadata

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        near = sorted((distance(bits, value), media_id)
                      for batch in self.batches(10_000) for media_id, value in batch
                      if media_id != exclude and distance(bits, value) <= max_distance)
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

    def _hashed(self) -> str:
        return f"\"status\" = 'READY' AND {self._hash} IS NOT NULL"

    def _details(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """key, width and height of the rows `ids` that are still READY."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._run(lambda conn: conn.execute(
            f"SELECT \"id\", \"key\", json_extract(\"metadata\", '$.width') AS width, "
            f"json_extract(\"metadata\", '$.height') AS height FROM {self._table} "
            f"WHERE \"status\" = 'READY' AND \"id\" IN ({marks})", ids).fetchall())
        return {row["id"]: {"key": row["key"], "width": _int(row["width"]),
                            "height": _int(row["height"])} for row in rows}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None
