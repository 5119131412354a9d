"""What `media-worker events tail` prints: status changes as they happen, from one of three
sources.

- `notify`: PostgreSQL's NOTIFY on EVENTS_PG_CHANNEL, the moment each change commits (the
  media id and its new status);
- `outbox`: the outbox's new rows, polled (the whole event as delivered, each event once
  whatever the number of targets); an event delivered and deleted between two polls is missed,
  so the poll is kept well below the dispatchers' own interval;
- `table`: the media table's recently updated rows, polled (where neither exists: SQLite with
  no target); transitions quicker than the poll show as the row's latest state.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from media_worker.events.outbox import EVENT_TYPES, OutboxEntry, OutboxStore
from media_worker.repository.port import MediaAdmin
from media_worker.types import MediaRecord, MediaStatus

REMEMBERED: Final = 10_000  # event ids (or row states) kept to print each once


@dataclass(frozen=True)
class TailLine:
    """One status change as printed: a line of text, or its JSON with --json."""

    when: datetime
    event_type: str
    media_id: str
    status: str
    detail: dict[str, Any]

    def text(self) -> str:
        stamp = self.when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        extras = [f"{key}={self.detail[key]}" for key in ("attempts", "error")
                  if self.detail.get(key) not in (None, "")]
        return "  ".join([stamp, f"{self.event_type:<16}", self.media_id, self.status, *extras])

    def json(self) -> str:
        return json.dumps(self.detail, ensure_ascii=False, separators=(",", ":"))


def type_of(status: str) -> str:
    try:
        return EVENT_TYPES[MediaStatus(status)]
    except ValueError:
        return "unknown"


def from_notifications(notifications: Iterable[tuple[datetime, dict[str, str]]]
                       ) -> Iterator[TailLine]:
    for received, payload in notifications:
        event_type = type_of(payload["status"])
        yield TailLine(received, event_type, payload["id"], payload["status"],
                       {"type": event_type, "mediaId": payload["id"],
                        "status": payload["status"],
                        "receivedAt": received.isoformat().replace("+00:00", "Z")})


def follow_outbox(store: OutboxStore, *, interval: float, until: float | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> Iterator[TailLine]:
    """New outbox rows from this call on, each event once, until the monotonic clock passes
    `until` (None: for ever)."""
    cursor = store.latest_seq()  # now, not at the first next()

    def lines() -> Iterator[TailLine]:
        after = cursor
        seen: OrderedDict[str, None] = OrderedDict()
        while until is None or time.monotonic() < until:
            entries = store.follow(after, 500)
            for entry in entries:
                after = entry.seq
                if entry.event_id not in seen:
                    _remember(seen, entry.event_id)
                    yield _outbox_line(entry)
            if not entries:
                sleep(interval)

    return lines()


def follow_table(admin: MediaAdmin, *, interval: float, until: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> Iterator[TailLine]:
    """Rows updated from this call on, each state (status, attempts, update time) once, until
    the monotonic clock passes `until` (None: for ever)."""
    started = datetime.now(UTC)  # now, not at the first next()

    def lines() -> Iterator[TailLine]:
        cursor = started
        seen: OrderedDict[str, None] = OrderedDict()
        while until is None or time.monotonic() < until:
            # A little overlap: a row committed late with an earlier updatedAt is still seen.
            records = admin.list(limit=500, updated_after=cursor - timedelta(seconds=2))
            fresh = False
            for record in sorted(records, key=lambda r: r.updated_at or cursor):
                moment = record.updated_at or cursor
                key = f"{record.id}|{record.status}|{record.attempts}|{moment.isoformat()}"
                if moment >= started and key not in seen:
                    _remember(seen, key)
                    fresh = True
                    yield _table_line(record)
                cursor = max(cursor, moment)
            if not fresh:
                sleep(interval)

    return lines()


def _remember(seen: OrderedDict[str, None], key: str) -> None:
    seen[key] = None
    if len(seen) > REMEMBERED:
        seen.popitem(last=False)


def _outbox_line(entry: OutboxEntry) -> TailLine:
    event = json.loads(entry.payload)
    return TailLine(entry.created_at, entry.event_type, entry.media_id,
                    str(event.get("status", "")), event)


def _table_line(record: MediaRecord) -> TailLine:
    event_type = EVENT_TYPES[record.status] if record.attempts or (
        record.status is not MediaStatus.PENDING) else "media.created"
    when = record.updated_at or datetime.now(UTC)
    return TailLine(when, event_type, record.id, record.status.value, {
        "type": event_type, "mediaId": record.id, "status": record.status.value,
        "attempts": record.attempts, "error": record.error,
        "updatedAt": when.isoformat().replace("+00:00", "Z")})
