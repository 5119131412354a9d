"""The SQS adapter on a FIFO queue (moto and LocalStack): sends carry a group per media, order
holds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

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
