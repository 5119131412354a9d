"""What the worker needs from a job queue: SQS semantics, nothing more.

At-least-once delivery, a visibility timeout that hides a received message, a receive count,
and an optional dead-letter queue. Every adapter passes tests/contract/test_queue_contract.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# SQS's system attribute carrying an X-Ray trace header (set by SQS itself when the sender is
# traced by X-Ray, or by the sender); adapters pass it among the message's attributes.
AWS_TRACE_HEADER = "AWSTraceHeader"


@dataclass(frozen=True)
class ReceivedMessage:
    """One delivery of a message; `receipt_handle` identifies this delivery, not the message."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    # When the producer sent it (seconds since the epoch, SQS's SentTimestamp): how long a
    # job may wait for its row to commit counts from here. None where a server omits it.
    sent_at: float | None = None
    # The message's string attributes (and AWS_TRACE_HEADER): how a producer hands over its
    # trace context (`traceparent`, `tracestate`) without touching the body.
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class QueueDepth:
    """Approximate counts, as SQS reports them."""

    visible: int
    in_flight: int
    delayed: int = 0
    dead_letter: int | None = None


class MessageQueue(Protocol):
    """What the worker needs from a queue of job messages. Methods raise
    QueueUnavailableError when the queue is down."""

    @property
    def has_dead_letter(self) -> bool:
        """Whether `dead_letter` moves messages aside (True) or only deletes them (False)."""
        ...

    def send(self, body: str, delay_seconds: int = 0,
             attributes: Mapping[str, str] | None = None) -> str:
        """Send a message with optional string `attributes`; returns its message id."""
        ...

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        """Receive up to `max_messages` (1-10), long-polling up to `wait_seconds`."""
        ...

    def delete(self, message: ReceivedMessage) -> None:
        """Delete a received message (a stale receipt handle is silently ignored, as on SQS)."""
        ...

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        """Hide a received message for `timeout_seconds` from now (0 = visible at once)."""
        ...

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Move a message to the dead-letter queue, or delete it when there is none."""
        ...

    def depth(self) -> QueueDepth:
        """Approximate message counts of the queue (and of its dead-letter queue)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...



class DeadLetterAdmin(Protocol):
    """What operators need beyond the worker's side: looking into the dead-letter queue,
    moving its messages back, emptying it (`media-worker dlq`)."""

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """Up to `limit` dead letters as (message id, body, reason), left in place."""
        ...

    def redrive_dead_letters(self) -> int:
        """Move every dead letter back to the main queue; returns how many."""
        ...

    def purge_dead_letters(self) -> int:
        """Delete every dead letter; returns how many."""
        ...


class OperatedQueue(MessageQueue, DeadLetterAdmin, Protocol):
    """Both sides, as every adapter provides them."""
