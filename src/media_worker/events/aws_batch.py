"""Status events sent to an SQS queue (EVENTS_SQS_URL) or published to an SNS topic
(EVENTS_SNS_TOPIC_ARN), one message per event, up to ten per call.

One target serves both: they differ only in the batch call (SendMessageBatch, PublishBatch:
events/aws_protocols.py), which is signed and sent by events/aws_signed.py. The body is the
event's JSON; the attribute `type` carries its type. FIFO queues and topics (a URL or ARN
ending in `.fifo`) get the media id as MessageGroupId (one media's events are kept in order,
different media flow in parallel; SNS keeps each group's order to its FIFO subscribers) and
the event id as MessageDeduplicationId (a retry within five minutes of a delivery whose answer
was lost is dropped by AWS). A standard queue keeps no order: a consumer that needs one should
use FIFO.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from botocore.exceptions import BotoCoreError

from media_worker.events.aws_protocols import (
    Entry,
    all_failed,
    sns_report,
    sns_request,
    sqs_report,
    sqs_request,
)
from media_worker.events.aws_signed import SignedPoster
from media_worker.events.http_post import Answer
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import short_error
from media_worker.settings_views import redact_url

MAX_BATCH: Final = 10  # SendMessageBatch and PublishBatch take at most ten entries
MAX_GROUP_ID: Final = 128


def is_fifo(name_or_arn: str) -> bool:
    return name_or_arn.rstrip("/").endswith(".fifo")


def group_id(media_id: str) -> str:
    """The media id, or its SHA-256 when longer than a group id may be."""
    if len(media_id) <= MAX_GROUP_ID:
        return media_id
    return hashlib.sha256(media_id.encode()).hexdigest()


def fifo_fields(event: OutboxEntry) -> dict[str, str]:
    return {"MessageGroupId": group_id(event.media_id),
            "MessageDeduplicationId": event.event_id}


@dataclass(frozen=True)
class BatchCall:
    """What tells one service's batch call from the other's."""

    name: str  # the outbox's `target` column
    service: str  # for failure reasons
    request: Callable[[str, Sequence[Entry]], tuple[bytes, dict[str, str]]]
    report: Callable[[Answer, Sequence[OutboxEntry]], DeliveryReport]


SQS: Final = BatchCall("sqs", "SQS", sqs_request, sqs_report)
SNS: Final = BatchCall("sns", "SNS", sns_request, sns_report)


class AwsBatchTarget:
    """EventTarget: one SendMessageBatch or PublishBatch call per batch of up to ten events."""

    max_batch = MAX_BATCH
    keeps_batch_order = True  # a batch is enqueued in the order sent, per group

    def __init__(self, call: BatchCall, destination: str, poster: SignedPoster) -> None:
        """`destination`: the queue URL or topic ARN; `poster`: signed for the call's
        service, at its endpoint."""
        self.name = call.name
        self._call = call
        self._destination = destination
        self._poster = poster
        self._fifo = is_fifo(destination)
        self.call_timeout_seconds = poster.call_timeout_seconds

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        entries = [Entry(index, event, fifo_fields(event) if self._fifo else {})
                   for index, event in enumerate(events)]
        body, headers = self._call.request(self._destination, entries)
        service = self._call.service
        try:
            answer = self._poster.post(body, headers)
        except TimeoutError:
            return all_failed(events, f"{service} did not answer within "
                                      f"{self.call_timeout_seconds:g} s")
        except (OSError, BotoCoreError) as exc:
            return all_failed(events, f"{service} unavailable: {short_error(exc, limit=200)}")
        return self._call.report(answer, events)

    @property
    def poster(self) -> SignedPoster:
        return self._poster

    def describe(self) -> str:
        return redact_url(self._destination)

    def close(self) -> None:
        self._poster.close()


def sqs_target(queue_url: str, poster: SignedPoster) -> AwsBatchTarget:
    """The target of EVENTS_SQS_URL; `poster`: signed for "sqs" at the SQS endpoint."""
    return AwsBatchTarget(SQS, queue_url, poster)


def sns_target(topic_arn: str, poster: SignedPoster) -> AwsBatchTarget:
    """The target of EVENTS_SNS_TOPIC_ARN; `poster`: signed for "sns" at the SNS endpoint."""
    return AwsBatchTarget(SNS, topic_arn, poster)
