"""Mapping between a `Media` row (Prisma's camelCase columns) and MediaRecord, shared by the
PostgreSQL and SQLite adapters; and the migration files they run."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import UTC, datetime
from enum import IntEnum
from importlib import resources
from typing import Any

from media_worker.similarity import QUARTER_COLUMNS, quarters
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData

TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def checked_table_name(table: str) -> str:
    """The table name, refused unless it is a plain identifier (it is quoted into SQL)."""
    if not TABLE_NAME.match(table):
        raise ValueError(f"invalid table name {table!r}")
    return table


def optional_table_name(table: str, *, required: bool) -> str | None:
    """A derived table name (the outbox's), or None when it is too long to be one and nothing
    needs it; refused as invalid when something does."""
    if TABLE_NAME.match(table):
        return table
    if required:
        raise ValueError(f"invalid table name {table!r}: MEDIA_TABLE is too long to name its "
                         "outbox of status events after it (63 characters at most)")
    return None


def migration_sql(dialect: str) -> str:
    """The schema script of a dialect ('postgres' or 'sqlite'), with {table} placeholders."""
    package = resources.files("media_worker.repository.migrations")
    return package.joinpath(f"{dialect}.sql").read_text(encoding="utf-8")


class HashColumns(IntEnum):
    """Which of the perceptual hash's columns a media table has, each level with the ones
    before (docs/media.md, "The phash column")."""

    NONE = 0  # the hash is in metadata.phash only
    PHASH = 1  # "phash", the 64 bits as a signed bigint
    QUARTERS = 2  # and "phash0" to "phash3", its 16-bit quarters (similarity.py)

    @classmethod
    def of(cls, columns: Collection[str]) -> HashColumns:
        """The level a table with these column names has (all four quarters, or none)."""
        if "phash" not in columns:
            return cls.NONE
        return cls.QUARTERS if set(QUARTER_COLUMNS) <= set(columns) else cls.PHASH

    @property
    def names(self) -> tuple[str, ...]:
        """The columns `complete` writes on a table of this level."""
        if self is HashColumns.NONE:
            return ()
        return ("phash",) if self is HashColumns.PHASH else ("phash", *QUARTER_COLUMNS)


def hash_values(metadata: dict[str, Any]) -> dict[str, int | None]:
    """The hash columns of a READY row: metadata.phash as a signed 64-bit integer (the same
    bits, for PostgreSQL's bigint) and its four unsigned quarters, or all None when the job
    made no hash (a flat picture)."""
    # Imported here: the engine's module loads libvips, which commands like `status` never need.
    from media_worker.engines.phash import PerceptualHash

    value = metadata.get("phash")
    if not isinstance(value, str | int) or isinstance(value, bool):
        return dict.fromkeys(HashColumns.QUARTERS.names)
    try:
        parsed = PerceptualHash.parse(value)
    except ValueError:
        return dict.fromkeys(HashColumns.QUARTERS.names)
    return {"phash": parsed.signed, **dict(zip(QUARTER_COLUMNS, quarters(parsed.bits),
                                               strict=True))}


def hash_columns_warnings(table: str, present: HashColumns) -> list[str]:
    """What the worker logs once when the table predates the hash's columns: it keeps working
    (the hash stays in metadata; `similar` computes every distance), but wants a migration."""
    add = ("add `phash BigInt?`, `phash0 Int?` to `phash3 Int?` and their indexes to the "
           "model as deploy/prisma/media.prisma has them and migrate, or run "
           "`media-worker migrate`")
    if present is HashColumns.NONE:
        return [f'table "{table}" has no "phash" column: rows become READY without it (their '
                "hash stays in metadata.phash, which `media-worker similar` and `duplicates` "
                f"also read); {add}"]
    if present is HashColumns.PHASH:
        return [f'table "{table}" has "phash" but not its quarters "phash0" to "phash3": '
                "`media-worker similar` computes the distance to every hash instead of "
                f"looking them up in the quarters' indexes; {add}"]
    return []


def thumbnails_json(thumbnails: list[ThumbnailData]) -> list[dict[str, Any]]:
    return [thumb.to_wire() for thumb in thumbnails]


def record_from_row(row: dict[str, Any]) -> MediaRecord:
    """A MediaRecord from a row keyed by column name; JSON may arrive parsed or as text."""
    return MediaRecord(
        id=row["id"],
        bucket=row["bucket"],
        key=row["key"],
        mime_type=row["mimeType"],
        size=row["size"],
        status=MediaStatus(row["status"]),
        thumbnails=_json(row["thumbnails"]),
        metadata=_json_object(row["metadata"]),
        error=row["error"],
        attempts=row["attempts"],
        lease_until=as_utc(row["leaseUntil"]),
        processed_at=as_utc(row["processedAt"]),
        created_at=as_utc(row["createdAt"]),
        updated_at=as_utc(row["updatedAt"]),
    )


def merged_metadata(stored: Any, worker_keys: dict[str, Any]) -> dict[str, Any]:
    """The row's metadata with the worker's keys written over it: the API's own keys
    (originalName, uploadedBy …) survive; a stored value that is not an object is replaced."""
    current = _json(stored)
    return ({**current, **worker_keys} if isinstance(current, dict) else dict(worker_keys))


def _json_object(value: Any) -> dict[str, Any] | None:
    """The API owns `metadata` and may store any JSON there; the worker reads objects only."""
    parsed = _json(value)
    return parsed if isinstance(parsed, dict) else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def as_utc(value: datetime | str | None) -> datetime | None:
    """Prisma stores UTC without a zone; SQLite stores ISO text. Both become aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
