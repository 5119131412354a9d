"""What the SQS and SNS targets share: FIFO fields, batch answers read as a DeliveryReport, and
boto3 failures told without credentials.

FIFO queues and topics get the media id as MessageGroupId (one media's events are kept in
order, different media flow in parallel) and the event id as MessageDeduplicationId (a retry
within five minutes of a delivery whose answer was lost is dropped by AWS).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import short_error

MAX_BATCH: Final = 10  # SendMessageBatch and PublishBatch take at most ten entries
MAX_GROUP_ID: Final = 128
# One call: botocore's standard retries (jittered backoff on throttling, 5xx and dropped
# connections), each try bounded by these timeouts. CALL_TIMEOUT_SECONDS bounds the whole.
CONNECT_TIMEOUT_SECONDS: Final = 5
READ_TIMEOUT_SECONDS: Final = 10
MAX_ATTEMPTS: Final = 3
CALL_TIMEOUT_SECONDS: Final = float(
    MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 10)


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


BOTO_ERRORS: Final = (BotoCoreError, ClientError)
