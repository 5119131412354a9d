"""Status events on SQLite: the transition and its outbox rows in one write transaction.

SQLite has no NOTIFY; `events tail` follows the outbox (or the table) instead. Rows are written
only while a target is configured (EventRecording.targets). The payload is built by SQLite's
JSON functions from the row as updated, the same shape as PostgreSQL's.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import TypeVar

from media_worker.events.outbox import EVENT_TYPES

T = TypeVar("T")
EVENT_TYPE = "CASE m.\"status\" " + " ".join(
    f"WHEN '{status.value}' THEN '{event_type}'" for status, event_type in EVENT_TYPES.items()
) + " END"


class SqliteEvents:
    """Runs a transition so that its outbox rows commit with it."""

    def __init__(self, targets: tuple[str, ...], *, table: str, outbox: str) -> None:
        """`table` and `outbox` are quoted identifiers."""
        self._targets = json.dumps(list(targets))
        self.enabled = bool(targets)
        self._insert = (
            f'INSERT INTO {outbox} ("id", "target", "mediaId", "payload", "createdAt") '
            f'SELECT :event_id, t.value, m."id", json_object('
            f"'type', {EVENT_TYPE}, 'id', :event_id, 'mediaId', m.\"id\", 'jobId', :job, "
            "'status', m.\"status\", 'attempts', m.\"attempts\", 'error', m.\"error\", "
            "'thumbnails', CASE WHEN m.\"status\" = 'READY' THEN json(m.\"thumbnails\") END, "
            "'metadata', CASE WHEN m.\"status\" = 'READY' THEN json(m.\"metadata\") END, "
            "'occurredAt', replace(m.\"updatedAt\", '+00:00', 'Z')), m.\"updatedAt\" "
            f'FROM {table} m, json_each(:targets) t WHERE m."id" = :id')
        self._status = f'SELECT "status" FROM {table} WHERE "id" = :id'

    def transition(self, conn: sqlite3.Connection, write: Callable[[], T], *, media_id: str,
                   job_id: str | None, changed_from: str | None = None) -> T:
        """Run `write` (truthy when it matched the row) in a write transaction that also
        records the event; with `changed_from`, only if the row was in that status before
        (a retried write of the same claim finds it changed already)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = None
            if changed_from is not None:
                row = conn.execute(self._status, {"id": media_id}).fetchone()
                before = row[0] if row else None
            result = write()
            if result and (changed_from is None or before == changed_from):
                conn.execute(self._insert, {"event_id": str(uuid.uuid4()), "job": job_id,
                                            "targets": self._targets, "id": media_id})
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
