"""What both outbox adapters read back from their rows: the statements differ per database,
the columns they return do not (outbox_postgres.COLUMNS and outbox_sqlite.COLUMNS name the
same ones), so one mapping turns a row of either into an OutboxEntry or a TargetDepth."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from media_worker.events.outbox import OutboxEntry, TargetDepth
from media_worker.repository.rows import as_utc

Row = Any  # a psycopg dict row or a sqlite3.Row: both are read by column name


def outbox_entry(row: Row) -> OutboxEntry:
    """A row of seq, id, target, mediaId, payload (as text), type, attempts, createdAt."""
    created = as_utc(row["createdAt"])
    assert created is not None
    return OutboxEntry(seq=row["seq"], target=row["target"], event_id=row["id"],
                       media_id=row["mediaId"], event_type=row["type"] or "",
                       payload=row["payload"], attempts=row["attempts"], created_at=created)


def outbox_entries(rows: Iterable[Row]) -> list[OutboxEntry]:
    """Rows as entries, oldest first (an UPDATE's or DELETE's RETURNING has no order)."""
    return sorted((outbox_entry(row) for row in rows), key=lambda entry: entry.seq)


def target_depths(rows: Iterable[Row]) -> dict[str, TargetDepth]:
    """Rows of target, n (rows waiting) and oldest (its createdAt) as depths per target."""
    now = datetime.now(UTC)
    return {row["target"]: TargetDepth(row["n"], _age_seconds(now, row["oldest"]))
            for row in rows}


def _age_seconds(now: datetime, oldest: datetime | str | None) -> float | None:
    moment = as_utc(oldest)
    return None if moment is None else max(0.0, (now - moment).total_seconds())
