"""Mapping between a `Media` row (Prisma's camelCase columns) and MediaRecord, shared by the
PostgreSQL and SQLite adapters; and the migration files they run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

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


def phash_column(metadata: dict[str, Any]) -> int | None:
    """The "phash" column of a READY row: metadata.phash as a signed 64-bit integer (the same
    bits, for PostgreSQL's bigint), or None when the job made no hash (a flat picture)."""
    # Imported here: the engine's module loads libvips, which commands like `status` never need.
    from media_worker.engines.phash import PerceptualHash

    value = metadata.get("phash")
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return PerceptualHash.parse(value).signed
    except ValueError:
        return None


def missing_phash_warning(table: str) -> str:
    """What the worker logs once when the table predates the "phash" column: it keeps
    working (the hash stays in metadata), but PostgreSQL cannot search it there."""
    return (f'table "{table}" has no "phash" column: rows become READY without it (their hash '
            "stays in metadata.phash, which `media-worker similar` and `duplicates` also read);"
            " add `phash BigInt?` and `@@index([phash, id])` to the model (deploy/prisma/"
            "media.prisma) and migrate, or run `media-worker migrate`")


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
