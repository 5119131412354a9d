"""Status events published to an SNS topic (EVENTS_SNS_TOPIC_ARN), one message per event.

The message is the event's JSON; the attribute `type` carries its type, for subscription
filter policies. On a FIFO topic (an ARN ending in `.fifo`) the media id is the group and the
event id the deduplication id, and SNS keeps each group's order to its FIFO subscribers.
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


class SnsTarget:
    """EventTarget: PublishBatch to one topic."""

    name = "sns"
    max_batch = MAX_BATCH
    call_timeout_seconds = CALL_TIMEOUT_SECONDS
    keeps_batch_order = True  # a batch is enqueued in the order sent, per group

    def __init__(self, topic_arn: str, client: Any) -> None:
        """`client`: a boto3 SNS client (aws_batch.client_config)."""
        self._arn = topic_arn
        self._client = client
        self._fifo = is_fifo(topic_arn)

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        entries = [{"Id": str(index), "Message": event.payload,
                    "MessageAttributes": type_attribute(event),
                    **(fifo_fields(event) if self._fifo else {})}
                   for index, event in enumerate(events)]
        try:
            response = self._client.publish_batch(TopicArn=self._arn,
                                                  PublishBatchRequestEntries=entries)
        except BOTO_ERRORS as exc:
            return all_failed(events, exc, "SNS")
        return report_of(response, events)

    def describe(self) -> str:
        return self._arn

    def close(self) -> None:
        self._client.close()
