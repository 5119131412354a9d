"""The anchor of the SQS event target's CPU (bench/events.py): the same batches sent with a
botocore client, as the target sent them before events/aws_signed.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.config import Config

from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport

BOTOCORE_CONFIG = Config(region_name="us-east-1", connect_timeout=5, read_timeout=10,
                         retries={"mode": "standard", "max_attempts": 3},
                         max_pool_connections=2, tcp_keepalive=True, parameter_validation=False)


class BotocoreSqsTarget:
    """The anchor: the same batches sent with a botocore client, as the SQS target did before
    events/aws_signed.py (parameter validation off, standard retries, one kept connection)."""

    name = "sqs"
    max_batch = 10
    keeps_batch_order = True
    call_timeout_seconds = 55.0

    def __init__(self, queue_url: str, client: Any) -> None:
        self._url = queue_url
        self._client = client

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        entries = [{"Id": str(index), "MessageBody": event.payload,
                    "MessageAttributes": {"type": {"DataType": "String",
                                                   "StringValue": event.event_type}},
                    "MessageGroupId": event.media_id, "MessageDeduplicationId": event.event_id}
                   for index, event in enumerate(events)]
        answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
        return DeliveryReport(frozenset(events[int(item["Id"])].event_id
                                        for item in answer.get("Successful", ())))

    def describe(self) -> str:
        return self._url

    def close(self) -> None:
        self._client.close()
