"""The outbox: what the repositories write with each status change, and what the dispatchers
need from the table to deliver it.

One row per event and target: a target that is down delays only its own rows, and a row is
deleted once its target has it, so nothing is sent twice to a target that already answered.
Rows of one (target, media) are delivered in `seq` order; a row is taken by a dispatcher (or
waits for its next try) while its `leaseUntil` lies ahead, and no other row of the same
(target, media) is handed out meanwhile. That rule is what keeps the order across replicas
and across a crash: a dead dispatcher's lease simply runs out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from media_worker.types import MediaStatus

# The event type of each status a transition leads to (PENDING again: a retry is coming).
EVENT_TYPES: Final[Mapping[MediaStatus, str]] = {
    MediaStatus.PROCESSING: "media.processing",
    MediaStatus.READY: "media.ready",
    MediaStatus.FAILED: "media.failed",
    MediaStatus.PENDING: "media.retrying",
}
TARGET_NAMES: Final = ("webhook", "sqs", "sns")


def outbox_table_name(media_table: str) -> str:
    """The outbox of a media table: Prisma's `model MediaEvent` beside `model Media`."""
    return f"{media_table}Event"


@dataclass(frozen=True)
class EventRecording:
    """What a repository writes with every status change, in the same transaction.

    `targets`: one outbox row per event for each (none: no outbox rows at all, so an outbox
    nobody drains never grows). `channel`: the PostgreSQL NOTIFY channel, or None."""

    targets: tuple[str, ...] = ()
    channel: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.targets or self.channel)


@dataclass(frozen=True)
class OutboxEntry:
    """One event waiting for one target."""

    seq: int
    target: str
    event_id: str
    media_id: str
    event_type: str
    payload: str  # the event's JSON, sent byte for byte (what a webhook signature covers)
    attempts: int  # failed deliveries so far
    created_at: datetime


@dataclass(frozen=True)
class Settled:
    """What a delivery round did with the rows it took: delivered (deleted), failed (tried
    again after the delay, attempts + 1), untried (handed back at once)."""

    delivered: Sequence[int] = ()
    retry_after: Mapping[int, float] = field(default_factory=dict)
    untried: Sequence[int] = ()


@dataclass(frozen=True)
class TargetDepth:
    """Rows waiting for one target, and the age of its oldest."""

    count: int
    oldest_age_seconds: float | None


class OutboxStore(Protocol):
    """The dispatchers' side of the outbox table. Methods raise RepositoryUnavailableError
    when the database is down. Every adapter passes tests/contract/test_outbox_contract.py."""

    def lease(self, target: str, limit: int, lease_seconds: float) -> list[OutboxEntry]:
        """Take up to `limit` of the oldest rows of `target` whose media has no row taken or
        waiting, in `seq` order; they stay taken for `lease_seconds` (across replicas)."""
        ...

    def settle(self, settled: Settled) -> None:
        """Record a round's results, in one transaction."""
        ...

    def expire(self, max_age_seconds: float, limit: int) -> list[OutboxEntry]:
        """Delete (and return) up to `limit` rows of any target older than `max_age_seconds`."""
        ...

    def depth(self) -> dict[str, TargetDepth]:
        """Rows waiting per target (targets with none are absent)."""
        ...

    def follow(self, after_seq: int, limit: int) -> list[OutboxEntry]:
        """Rows with `seq` above `after_seq`, oldest first (`events tail`)."""
        ...

    def latest_seq(self) -> int:
        """The highest `seq` written so far (0 for none): where `events tail` starts."""
        ...
