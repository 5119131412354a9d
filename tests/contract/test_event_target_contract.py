"""The event target contract: every target (a webhook the test runs, an SQS FIFO queue on moto
and on LocalStack, an SNS FIFO topic on moto read through an SQS FIFO subscription) delivers
what the dispatcher hands it byte for byte, keeps one media's events in order, and reports a
destination that cannot be reached as failed events, never as an exception."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from standardwebhooks.webhooks import Webhook

from media_worker.events.aws_batch import sns_target, sqs_target
from media_worker.events.aws_signed import SignedPoster
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import EventTarget
from media_worker.events.webhook_target import WebhookTarget
from tests.conftest import REPO_ROOT, sqs_endpoint
from tests.servers import free_port
from tests.webhook_receiver import Receiver, new_secret, webhook_receiver

KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
TARGETS = ["webhook", pytest.param("sqs-moto", marks=pytest.mark.services),
           pytest.param("sqs-localstack", marks=pytest.mark.services),
           pytest.param("sns-moto", marks=pytest.mark.services)]


def entry(media_id: str, event_type: str = "media.ready", seq: int = 1) -> OutboxEntry:
    event_id = str(uuid.uuid4())
    payload = json.dumps({"type": event_type, "id": event_id, "mediaId": media_id,
                          "status": event_type.removeprefix("media.").upper(), "été": "ü"},
                         ensure_ascii=False)
    return OutboxEntry(seq=seq, target="test", event_id=event_id, media_id=media_id,
                       event_type=event_type, payload=payload, attempts=0,
                       created_at=datetime.now(UTC))


@dataclass
class Received:
    body: str
    type: str | None
    group: str | None = None
    dedup: str | None = None


@dataclass
class Destination:
    """A target and a way to read back what reached its destination."""

    target: EventTarget
    read: Callable[..., list[Received]]  # (count, patience=5 s): in arrival order


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **KEYS)


def signed(endpoint: str, service: str) -> SignedPoster:
    """Calls to `service` at `endpoint`, signed with the test keys."""
    return SignedPoster(endpoint, service=service, region="us-east-1",
                        credentials=Credentials("test", "test"), timeout_seconds=5)


def fifo_queue(sqs: Any, name: str) -> str:
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"]


def reader(sqs: Any, queue_url: str) -> Callable[..., list[Received]]:
    def read(count: int, patience: float = 5) -> list[Received]:
        """Until `count` messages came (or `patience` ran out: the caller sees fewer)."""
        found: list[Received] = []
        deadline = time.monotonic() + patience
        while len(found) < count and time.monotonic() < deadline:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1, AttributeNames=["All"],
                                         MessageAttributeNames=["All"])
            for message in answer.get("Messages", []):
                attributes = message.get("Attributes", {})
                found.append(Received(
                    message["Body"],
                    message.get("MessageAttributes", {}).get("type", {}).get("StringValue"),
                    attributes.get("MessageGroupId"), attributes.get("MessageDeduplicationId")))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return read


def webhook_reader(receiver: Receiver) -> Callable[..., list[Received]]:
    def read(count: int, patience: float = 10) -> list[Received]:
        return [Received(d.body, json.loads(d.body)["type"])
                for d in receiver.wait_for(count, timeout=patience)]

    return read


@contextmanager
def open_destination(kind: str, request: pytest.FixtureRequest,
                     name: str) -> Iterator[Destination]:
    """The destination called `kind` ("webhook", or SERVICE-SERVER like "sqs-moto")."""
    if kind == "webhook":
        with webhook_receiver() as receiver:
            hook = WebhookTarget(receiver.url, receiver.secret, timeout_seconds=5)
            yield Destination(hook, webhook_reader(receiver))
            hook.close()
        return
    service, server = kind.split("-")
    endpoint = sqs_endpoint(request, server)
    sqs = sqs_client(endpoint)
    queue_url = fifo_queue(sqs, name)
    if service == "sqs":
        target: EventTarget = sqs_target(queue_url, signed(endpoint, "sqs"))
    else:
        sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
        topic = sns.create_topic(Name=f"{name}.fifo", Attributes={"FifoTopic": "true"})[
            "TopicArn"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        target = sns_target(topic, signed(endpoint, "sns"))
    yield Destination(target, reader(sqs, queue_url))
    target.close()
    sqs.close()


@pytest.fixture(params=TARGETS)
def destination(request: pytest.FixtureRequest, unique_name: str) -> Iterator[Destination]:
    with open_destination(str(request.param), request, unique_name) as opened:
        yield opened


def unreachable(kind: str) -> EventTarget:
    """Each kind of target pointed at a port where nothing listens."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    if kind == "webhook":
        return WebhookTarget(f"{endpoint}/hook", new_secret(), timeout_seconds=2)
    if kind == "sqs":
        return sqs_target(f"{endpoint}/000000000000/events.fifo", signed(endpoint, "sqs"))
    return sns_target("arn:aws:sns:us-east-1:000000000000:events.fifo", signed(endpoint, "sns"))


# --- every target --------------------------------------------------------------------------
def test_a_batch_of_distinct_media_is_delivered_byte_for_byte(destination: Destination) -> None:
    events = [entry(f"media-{n}", event_type) for n, event_type in
              enumerate(("media.processing", "media.ready", "media.failed"))]
    report = destination.target.deliver(events)
    assert report.delivered == {e.event_id for e in events}
    assert not report.failed
    received = destination.read(3)
    assert sorted(r.body for r in received) == sorted(e.payload for e in events)
    assert {(json.loads(r.body)["id"], r.type) for r in received} == {
        (e.event_id, e.event_type) for e in events}


def test_one_medias_events_arrive_in_the_order_they_were_delivered(
    destination: Destination,
) -> None:
    media = str(uuid.uuid4())
    events = [entry(media, event_type, seq) for seq, event_type in
              enumerate(("media.processing", "media.retrying", "media.processing",
                         "media.ready"), start=1)]
    for event in events:
        assert destination.target.deliver([event]).delivered == {event.event_id}
    assert [r.body for r in destination.read(4)] == [e.payload for e in events]


@pytest.mark.parametrize("kind", ["webhook", pytest.param("sqs", marks=pytest.mark.services),
                                  pytest.param("sns", marks=pytest.mark.services)])
def test_an_unreachable_destination_is_a_failed_delivery_not_an_exception(
    kind: str, aws_credentials: None,
) -> None:
    target = unreachable(kind)
    events = [entry("media-1"), entry("media-2")]
    report = target.deliver(events)
    target.close()
    assert report.delivered == frozenset()
    assert set(report.failed) == {e.event_id for e in events}
    assert all(reason for reason in report.failed.values())


@pytest.mark.services
@pytest.mark.parametrize("kind", ["sqs-moto", "sqs-localstack", "sns-moto"])
def test_a_queue_or_topic_that_does_not_exist_fails_every_event_naming_the_services_code(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    service, server = kind.split("-")
    endpoint = sqs_endpoint(request, server)
    poster = signed(endpoint, service)
    target = (sqs_target(f"{endpoint}/000000000000/no-such-queue.fifo", poster)
              if service == "sqs" else
              sns_target("arn:aws:sns:us-east-1:000000000000:no-such-topic.fifo", poster))
    events = [entry("media-1"), entry("media-2")]
    report = target.deliver(events)
    target.close()
    assert report.delivered == frozenset()
    assert set(report.failed) == {e.event_id for e in events}
    code = "QueueDoesNotExist" if service == "sqs" else "NotFound"
    assert all(f"{service.upper()} refused the batch" in reason and code in reason
               for reason in report.failed.values())


# --- FIFO queues and topics ------------------------------------------------------------------
@pytest.mark.services
@pytest.mark.parametrize("kind", ["sqs-moto", "sqs-localstack", "sns-moto"])
def test_fifo_groups_by_media_and_deduplicates_by_event_id(
    kind: str, request: pytest.FixtureRequest, unique_name: str, aws_credentials: None,
) -> None:
    event = entry("media-42")
    with open_destination(kind, request, unique_name) as destination:
        destination.target.deliver([event])
        destination.target.deliver([event])  # a retry after a lost answer
        received = destination.read(2, patience=2)  # waits in vain for a second copy
    assert [(r.group, r.dedup) for r in received] == [("media-42", event.event_id)]


# --- the webhook -----------------------------------------------------------------------------
def test_a_webhook_event_is_signed_as_standard_webhooks_verify_it() -> None:
    with webhook_receiver() as receiver:
        target = WebhookTarget(receiver.url, receiver.secret, timeout_seconds=5)
        event = entry("media-1")
        target.deliver([event])
        target.close()
        delivery = receiver.wait_for(1, timeout=5)[0]
    assert delivery.verified
    assert Webhook(receiver.secret).verify(delivery.body, delivery.headers)["id"] == \
        event.event_id
    assert delivery.headers["webhook-id"] == event.event_id
    sent = datetime.fromtimestamp(int(delivery.headers["webhook-timestamp"]), UTC)
    assert abs(datetime.now(UTC) - sent) < timedelta(minutes=1)
    assert delivery.headers["content-type"] == "application/json"


def test_a_webhook_signed_with_another_secret_does_not_verify() -> None:
    with webhook_receiver() as receiver:
        target = WebhookTarget(receiver.url, new_secret(), timeout_seconds=5)
        target.deliver([entry("media-1")])
        target.close()
        assert not receiver.wait_for(1, timeout=5)[0].verified


def test_a_webhook_answer_other_than_2xx_is_a_failure() -> None:
    with webhook_receiver("fail") as receiver:
        target = WebhookTarget(receiver.url, receiver.secret, timeout_seconds=5)
        event = entry("media-1")
        report = target.deliver([event])
        target.close()
    assert report.failed == {event.event_id: "webhook answered HTTP 503"}


def test_a_webhook_that_does_not_answer_in_time_is_a_failure() -> None:
    with webhook_receiver("hang") as receiver:
        target = WebhookTarget(receiver.url, receiver.secret, timeout_seconds=0.5)
        events = [entry("media-1"), entry("media-2")]
        report = target.deliver(events)
        target.close()
        assert len(receiver.received()) == 2  # sent side by side, both held
    assert set(report.failed) == {e.event_id for e in events}
    assert set(report.failed.values()) == {"webhook did not answer within 0.5 s"}


@pytest.fixture(scope="module")
def node_verifier() -> Path:
    """tests/api installed (npm ci); skips without node or npm."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm not found: the Node verifier (tests/api) needs Node 20+")
    result = subprocess.run([REPO_ROOT / "scripts" / "ensure-node-packages.sh"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"scripts/ensure-node-packages.sh failed:\n{result.stderr}"
    return REPO_ROOT / "tests" / "api" / "verify-webhook.mjs"


def node_verify(script: Path, secret: str, body: str, headers: dict[str, str]) -> dict:
    result = subprocess.run(["node", str(script)], input=json.dumps(
        {"secret": secret, "body": body, "headers": headers}), capture_output=True, text=True,
        timeout=60, check=False)
    return json.loads(result.stdout)


def test_the_apis_standardwebhooks_npm_package_verifies_a_webhook_event(
    node_verifier: Path,
) -> None:
    with webhook_receiver() as receiver:
        target = WebhookTarget(receiver.url, receiver.secret, timeout_seconds=5)
        event = entry("media-7")
        target.deliver([event])
        target.close()
        delivery = receiver.wait_for(1, timeout=5)[0]
    verdict = node_verify(node_verifier, receiver.secret, delivery.body, delivery.headers)
    assert verdict == {"ok": True, "id": event.event_id, "type": "media.ready",
                       "mediaId": "media-7"}
    tampered = delivery.body.replace("media-7", "media-8")
    assert not node_verify(node_verifier, receiver.secret, tampered, delivery.headers)["ok"]
