"""The SQS adapter on a FIFO queue (moto and LocalStack): sends carry a group per media, order
holds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest

from media_worker.queue.port import ReceivedMessage
from media_worker.queue.sqs import SqsQueue
from tests.conftest import sqs_endpoint

pytestmark = pytest.mark.services


@pytest.fixture(params=["moto", "localstack"])
def fifo_queue(request: pytest.FixtureRequest, unique_name: str) -> Iterator[SqsQueue]:
    endpoint = sqs_endpoint(request, request.param)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"{unique_name}.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = SqsQueue(url, endpoint_url=endpoint, region="us-east-1", access_key_id="test",
                     secret_access_key="test", visibility_timeout=30)
    yield queue
    queue.close()


def test_fifo_queue_accepts_and_delivers_job_messages(fifo_queue: SqsQueue) -> None:
    fifo_queue.send(json.dumps({"mediaId": "a"}))
    [message] = fifo_queue.receive(10, 1)
    assert json.loads(message.body) == {"mediaId": "a"}
    fifo_queue.delete(message)
    assert fifo_queue.receive(10, 1) == []


def test_identical_bodies_are_not_deduplicated(fifo_queue: SqsQueue) -> None:
    fifo_queue.send(json.dumps({"mediaId": "a"}))
    fifo_queue.send(json.dumps({"mediaId": "a"}))
    received = fifo_queue.receive(10, 1)
    received += fifo_queue.receive(10, 1) if len(received) < 2 else []
    for message in received:
        fifo_queue.delete(message)
    received += fifo_queue.receive(10, 1)
    assert len(received) == 2


def test_messages_of_one_media_keep_their_order(fifo_queue: SqsQueue) -> None:
    for step in range(3):
        fifo_queue.send(json.dumps({"mediaId": "same", "jobId": str(step)}))
    seen = []
    while len(seen) < 3:
        batch = fifo_queue.receive(10, 1)
        assert batch
        for message in batch:
            seen.append(json.loads(message.body)["jobId"])
            fifo_queue.delete(message)
    assert seen == ["0", "1", "2"]


def test_poison_bodies_still_get_a_group(fifo_queue: SqsQueue) -> None:
    fifo_queue.send("not json")
    [message] = fifo_queue.receive(10, 1)
    assert message.body == "not json"


def _receive_within(queue: SqsQueue, seconds: float) -> list[ReceivedMessage]:
    """Poll with one-second waits: LocalStack makes lapsed messages visible once a second."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if messages := queue.receive(10, 1):
            return messages
    return []


def test_a_delete_with_an_expired_receipt_handle_does_not_raise(fifo_queue: SqsQueue) -> None:
    """The worker deletes after READY even when the visibility lapsed meanwhile. moto deletes
    anyway; LocalStack (like SQS) refuses an expired handle on a FIFO queue and the message
    comes back; the adapter raises in neither case, and the row, already READY, decides."""
    fifo_queue.send(json.dumps({"mediaId": "slow"}))
    [first] = fifo_queue.receive(10, 1)
    fifo_queue.change_visibility(first, 1)
    time.sleep(2.2)

    fifo_queue.delete(first)

    again = _receive_within(fifo_queue, 3)
    assert [(m.message_id, m.receive_count) for m in again] in ([], [(first.message_id, 2)])
    for message in again:
        fifo_queue.delete(message)
    assert fifo_queue.receive(10, 1) == []


def test_a_handed_back_message_is_never_overtaken_by_its_group(fifo_queue: SqsQueue) -> None:
    """One message of a group made visible while the later ones are in flight: moto holds the
    whole group back, LocalStack delivers that message again. Neither ever delivers a later
    message of the group first, so order per media holds; and handing back all of them (what
    the worker does on shutdown) returns them all in order."""
    for step in range(3):
        fifo_queue.send(json.dumps({"mediaId": "same", "jobId": str(step)}))
    held = fifo_queue.receive(10, 1)
    assert [json.loads(m.body)["jobId"] for m in held] == ["0", "1", "2"]

    fifo_queue.change_visibility(held[0], 0)
    early = _receive_within(fifo_queue, 2)
    assert [json.loads(m.body)["jobId"] for m in early] in ([], ["0"])

    for message in [*early, *held[1:]]:
        fifo_queue.change_visibility(message, 0)
    seen: list[str] = []
    while len(seen) < 3 and (batch := _receive_within(fifo_queue, 3)):
        for message in batch:
            seen.append(json.loads(message.body)["jobId"])
            fifo_queue.delete(message)
    assert seen == ["0", "1", "2"]
