"""Status events sent to an SQS queue (EVENTS_SQS_URL) or published to an SNS topic
(EVENTS_SNS_TOPIC_ARN), one message per event, up to ten per call.

One target serves both: they differ only in the batch call (SendMessageBatch, PublishBatch),
the key of the message body (MessageBody, Message) and of the destination (QueueUrl, TopicArn).
The body is the event's JSON; the attribute `type` carries its type (SNS subscription filter
policies can select on it). FIFO queues and topics (a URL or ARN ending in `.fifo`) get the
media id as MessageGroupId (one media's events are kept in order, different media flow in
parallel; SNS keeps each group's order to its FIFO subscribers) and the event id as
MessageDeduplicationId (a retry within five minutes of a delivery whose answer was lost is
dropped by AWS). A standard queue keeps no order: a consumer that needs one should use FIFO.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import short_error
from media_worker.settings_views import redact_url

MAX_BATCH: Final = 10  # SendMessageBatch and PublishBatch take at most ten entries
MAX_GROUP_ID: Final = 128
# One call: botocore's standard retries (jittered backoff on throttling, 5xx and dropped
# connections), each try bounded by these timeouts. CALL_TIMEOUT_SECONDS bounds the whole.
CONNECT_TIMEOUT_SECONDS: Final = 5
READ_TIMEOUT_SECONDS: Final = 10
MAX_ATTEMPTS: Final = 3
CALL_TIMEOUT_SECONDS: Final = float(
    MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 10)
BOTO_ERRORS: Final = (BotoCoreError, ClientError)


def client_config(region: str) -> Config:
    """One connection kept alive; no client-side parameter validation (the entries are built
    here, and the check costs each call a share of its CPU: the service validates anyway)."""
    return Config(region_name=region, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                  read_timeout=READ_TIMEOUT_SECONDS,
                  retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                  max_pool_connections=2, tcp_keepalive=True, parameter_validation=False)


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


def type_attribute(event: OutboxEntry) -> dict[str, Any]:
    """The event type as a message attribute: SNS subscription filters can select on it."""
    return {"type": {"DataType": "String", "StringValue": event.event_type or "unknown"}}


def report_of(response: Mapping[str, Any], events: Sequence[OutboxEntry]) -> DeliveryReport:
    """A batch answer (entries' `Id` is the event's index in `events`) as a report."""
    delivered = frozenset(events[int(item["Id"])].event_id
                          for item in response.get("Successful", ()))
    failed = {events[int(item["Id"])].event_id:
              f"{item.get('Code', 'error')}: {item.get('Message', '')}".strip(": ")
              for item in response.get("Failed", ())}
    return DeliveryReport(delivered, failed)


def all_failed(events: Sequence[OutboxEntry], exc: BotoCoreError | ClientError,
               service: str) -> DeliveryReport:
    reason = f"{service} unavailable: {short_error(exc, limit=200)}"
    return DeliveryReport(failed={event.event_id: reason for event in events})


@dataclass(frozen=True)
class BatchCall:
    """What tells one service's batch call from the other's."""

    name: str  # the outbox's `target` column
    service: str  # for failure reasons
    operation: str  # the boto3 client's method
    destination_key: str
    entries_key: str
    body_key: str


SQS: Final = BatchCall("sqs", "SQS", "send_message_batch", "QueueUrl", "Entries", "MessageBody")
SNS: Final = BatchCall("sns", "SNS", "publish_batch", "TopicArn", "PublishBatchRequestEntries",
                       "Message")


class AwsBatchTarget:
    """EventTarget: one SendMessageBatch or PublishBatch call per batch of up to ten events."""

    max_batch = MAX_BATCH
    call_timeout_seconds = CALL_TIMEOUT_SECONDS
    keeps_batch_order = True  # a batch is enqueued in the order sent, per group

    def __init__(self, call: BatchCall, destination: str, client: Any) -> None:
        """`destination`: the queue URL or topic ARN; `client`: a boto3 client of the call's
        service (client_config)."""
        self.name = call.name
        self._call = call
        self._destination = destination
        self._client = client
        self._send = getattr(client, call.operation)
        self._fifo = is_fifo(destination)

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        body = self._call.body_key
        entries = [{"Id": str(index), body: event.payload,
                    "MessageAttributes": type_attribute(event),
                    **(fifo_fields(event) if self._fifo else {})}
                   for index, event in enumerate(events)]
        try:
            response = self._send(**{self._call.destination_key: self._destination,
                                     self._call.entries_key: entries})
        except BOTO_ERRORS as exc:
            return all_failed(events, exc, self._call.service)
        return report_of(response, events)

    def describe(self) -> str:
        return redact_url(self._destination)

    def close(self) -> None:
        self._client.close()


def sqs_target(queue_url: str, client: Any) -> AwsBatchTarget:
    """The target of EVENTS_SQS_URL; `client`: a boto3 SQS client."""
    return AwsBatchTarget(SQS, queue_url, client)


def sns_target(topic_arn: str, client: Any) -> AwsBatchTarget:
    """The target of EVENTS_SNS_TOPIC_ARN; `client`: a boto3 SNS client."""
    return AwsBatchTarget(SNS, topic_arn, client)
