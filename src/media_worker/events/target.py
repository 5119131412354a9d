"""The port of an event destination: a webhook, an SQS queue, an SNS topic.

A dispatcher hands a target a batch of events of distinct media (so nothing inside one call
can reorder one media's events), or for a target that keeps a batch's order (FIFO queues and
topics) the next events oldest first; the target says which it delivered and why the others
failed. A target never raises for what the destination does (down, slow, refusing): that is a
failed event, tried again later. Every target passes tests/contract/test_event_target_contract.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from media_worker.events.outbox import OutboxEntry


@dataclass(frozen=True)
class DeliveryReport:
    """Event ids the destination accepted, and the reason for each it did not. An event in
    neither was not attempted."""

    delivered: frozenset[str] = frozenset()
    failed: Mapping[str, str] = field(default_factory=dict)


class EventTarget(Protocol):
    """One destination of status events."""

    name: str  # the outbox's `target` column: webhook, sqs or sns
    max_batch: int  # events per `deliver` call
    # True: one call may carry several events of a media, in order, and the destination keeps
    # that order (FIFO queues and topics); False (absent): one event per media per call.
    keeps_batch_order: bool
    call_timeout_seconds: float  # the longest one `deliver` call can take

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        """Send `events` (at most `max_batch`; distinct media unless keeps_batch_order)."""
        ...

    def describe(self) -> str:
        """Where it delivers, without credentials (for logs)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
