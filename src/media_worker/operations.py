"""What operators do to a running system: look at it, re-queue work, empty the dead letters.

Kept apart from the CLI so each operation is a plain function over the ports, testable without
a terminal; cli.py only parses arguments, asks for confirmation and draws progress bars.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from media_worker.queue.port import MessageQueue, QueueDepth
from media_worker.repository.port import MediaAdmin
from media_worker.types import MediaRecord, MediaStatus, WorkerQueueMessage

Progress = Callable[[Iterable[MediaRecord]], Iterable[MediaRecord]]


def _no_progress(items: Iterable[MediaRecord]) -> Iterable[MediaRecord]:
    return items


@dataclass(frozen=True)
class Stats:
    """A snapshot for `media-worker stats`."""

    counts: dict[MediaStatus, int]
    depth: QueueDepth
    oldest_pending_seconds: float | None
    recent_failures: list[MediaRecord]


def gather_stats(repository: MediaAdmin, queue: MessageQueue, failures: int = 10) -> Stats:
    """Counts by status, queue depth, age of the oldest waiting row, the latest failures."""
    oldest = repository.oldest_created_at(MediaStatus.PENDING)
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
    return Stats(
        counts=repository.count_by_status(),
        depth=queue.depth(),
        oldest_pending_seconds=age,
        recent_failures=repository.list(MediaStatus.FAILED, limit=failures),
    )


def send_job(queue: MessageQueue, record: MediaRecord, reason: str) -> str:
    """Send the job message the API would have sent for this row."""
    message = WorkerQueueMessage(job_id=f"{reason}-{uuid.uuid4()}", media_id=record.id,
                                 bucket=record.bucket, key=record.key,
                                 mime_type=record.mime_type)
    return queue.send(json.dumps(message.to_wire()))


@dataclass(frozen=True)
class Summary:
    """How many rows an operation acted on and how many it passed over."""

    done: int
    skipped: int


def retry_failed(repository: MediaAdmin, queue: MessageQueue, *,
                 since: datetime | None = None, limit: int = 100_000,
                 progress: Progress = _no_progress) -> Summary:
    """Give FAILED rows (failed since `since`) a fresh start: PENDING, attempts 0, a message."""
    done = skipped = 0
    for record in progress(repository.list(MediaStatus.FAILED, limit, updated_after=since)):
        if repository.requeue(record.id):
            send_job(queue, record, "retry")
            done += 1
        else:
            skipped += 1  # someone else re-queued or finished it meanwhile
    return Summary(done, skipped)


def backfill(repository: MediaAdmin, queue: MessageQueue, *,
             older_than: timedelta = timedelta(minutes=10), limit: int = 100_000,
             progress: Progress = _no_progress) -> Summary:
    """Send a message for every PENDING row untouched for `older_than` (its message was lost,
    e.g. the API's sender was down). A duplicate is harmless: the claim lets one through."""
    cutoff = datetime.now(UTC) - older_than
    rows = repository.list(MediaStatus.PENDING, limit, updated_before=cutoff)
    count = 0
    for record in progress(rows):
        send_job(queue, record, "backfill")
        count += 1
    return Summary(count, 0)


def parse_age(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `7d` → a timedelta (operators type these)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 2h or 7d")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def parse_since(text: str) -> datetime:
    """A duration ago (`2h`) or an ISO timestamp (`2026-11-28T10:00`, UTC if no zone)."""
    try:
        return datetime.now(UTC) - parse_age(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (2h) nor an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
