"""Status events sent to an SQS queue (EVENTS_SQS_URL), one message per event.

The body is the event's JSON; the attribute `type` carries its type. On a FIFO queue (a URL
ending in `.fifo`) the media id is the group and the event id the deduplication id; on a
standard queue SQS keeps no order, so a consumer that needs one should use FIFO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from media_worker.events.aws_batch import (
    BOTO_ERRORS,
    CALL_TIMEOUT_SECONDS,
    MAX_BATCH,
    all_failed,
    fifo_fields,
    is_fifo,
    report_of,
    type_attribute,
)
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.settings_views import redact_url


class SqsTarget:
    """EventTarget: SendMessageBatch to one queue."""

    name = "sqs"
    max_batch = MAX_BATCH
    call_timeout_seconds = CALL_TIMEOUT_SECONDS
    keeps_batch_order = True  # a batch is enqueued in the order sent, per group

    def __init__(self, queue_url: str, client: Any) -> None:
        """`client`: a boto3 SQS client (aws_batch.client_config)."""
        self._url = queue_url
        self._client = client
        self._fifo = is_fifo(queue_url)

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        entries = [{"Id": str(index), "MessageBody": event.payload,
                    "MessageAttributes": type_attribute(event),
                    **(fifo_fields(event) if self._fifo else {})}
                   for index, event in enumerate(events)]
        try:
            response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
        except BOTO_ERRORS as exc:
            return all_failed(events, exc, "SQS")
        return report_of(response, events)

    def describe(self) -> str:
        return redact_url(self._url)

    def close(self) -> None:
        self._client.close()
