"""The queue contract: what every MessageQueue adapter does, checked against each of them.

"sqlite" is the embedded queue on a temporary file; "moto" and "localstack" are SqsQueue against
two real SQS servers (moto's HTTP server, and LocalStack, the original system's SQS), each with a
dead-letter queue created through boto3. A test reads as the sentence of the
contract it checks; adapter-specific tests follow at the end.
"""

from __future__ import annotations

import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from media_worker.errors import QueueUnavailableError
from media_worker.queue.port import AWS_TRACE_HEADER, MessageQueue, ReceivedMessage
from media_worker.queue.sqlite import SqliteQueue
from media_worker.queue.sqs import SqsQueue
from tests.conftest import sqs_endpoint

VISIBILITY = 1  # seconds: short, so redelivery tests stay quick
REGION = "us-east-1"
SQS_SERVERS = [pytest.param(name, marks=pytest.mark.services) for name in ("moto", "localstack")]


@dataclass
class Harness:
    """An adapter under test plus an adapter-independent look into its dead-letter queue."""

    kind: str
    queue: SqliteQueue | SqsQueue
    read_dead_letters: Callable[[], list[tuple[str, str]]]  # (body, reason) pairs


def _sqs_client(endpoint: str) -> Any:  # boto3's client classes are generated at run time
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def _sqlite_harness(tmp_path: Path) -> Harness:
    queue = SqliteQueue(tmp_path / "var" / "queue.db", visibility_timeout=VISIBILITY)
    return Harness("sqlite", queue,
                   lambda: [(body, reason) for _, body, reason in queue.dead_letters(100)])


def _sqs_harness(kind: str, endpoint: str, name: str) -> Harness:
    client = _sqs_client(endpoint)
    queue_url = client.create_queue(QueueName=name)["QueueUrl"]
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue = SqsQueue(queue_url, endpoint_url=endpoint, region=REGION, access_key_id="test",
                     secret_access_key="test", dlq_url=dlq_url,
                     visibility_timeout=VISIBILITY)

    def read_dead_letters() -> list[tuple[str, str]]:
        # Hidden for a minute: each dead letter is seen once, however many receives it takes.
        found: list[tuple[str, str]] = []
        while batch := client.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", []):
            found += [(m["Body"], m["MessageAttributes"]["DeadLetterReason"]["StringValue"])
                      for m in batch]
        return found

    return Harness(kind, queue, read_dead_letters)


@pytest.fixture(params=["sqlite", *SQS_SERVERS])
def harness(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[Harness]:
    if request.param == "sqlite":
        built = _sqlite_harness(tmp_path)
    else:
        built = _sqs_harness(request.param, sqs_endpoint(request, request.param), unique_name)
    yield built
    built.queue.close()


@pytest.fixture
def queue(harness: Harness) -> MessageQueue:
    return harness.queue


def receive_within(queue: MessageQueue, seconds: float, max_messages: int = 10
                   ) -> list[ReceivedMessage]:
    """Long-poll until something arrives or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if messages := queue.receive(max_messages, wait_seconds=1):
            return messages
    return []


def receive_one(queue: MessageQueue) -> ReceivedMessage:
    messages = receive_within(queue, 5, max_messages=1)
    assert len(messages) == 1, "expected one message within 5 s"
    return messages[0]


def assert_main_queue_empty(queue: MessageQueue) -> None:
    """Nothing visible, in flight or delayed: the message is gone, not merely hidden."""
    depth = queue.depth()
    assert (depth.visible, depth.in_flight, depth.delayed) == (0, 0, 0)


# --- delivery -------------------------------------------------------------------------------
def test_a_sent_message_is_received_with_its_id_body_and_receive_count_one(
    queue: MessageQueue,
) -> None:
    body = '{"mediaId": "c0ffee", "note": "ünïcødé ✓ 🎞"}'
    message_id = queue.send(body)

    message = receive_one(queue)

    assert (message.message_id, message.body, message.receive_count) == (message_id, body, 1)
    assert message.receipt_handle


def test_string_attributes_and_the_aws_trace_header_come_back_with_the_message(
    queue: MessageQueue,
) -> None:
    attributes = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=ünï",
        AWS_TRACE_HEADER: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                          "Sampled=1",
    }
    queue.send("traced", attributes=attributes)

    message = receive_one(queue)

    assert dict(message.attributes) == attributes


def test_a_message_sent_without_attributes_has_none(queue: MessageQueue) -> None:
    queue.send("plain")

    assert dict(receive_one(queue).attributes) == {}


def test_a_received_message_is_not_delivered_again_while_hidden(queue: MessageQueue) -> None:
    queue.send("once")
    receive_one(queue)

    assert queue.receive(10, wait_seconds=0) == []


def test_a_message_whose_visibility_timeout_passes_is_redelivered_with_receive_count_two(
    queue: MessageQueue,
) -> None:
    queue.send("again")
    first = receive_one(queue)
    started = time.monotonic()

    second = receive_one(queue)

    assert time.monotonic() - started >= 0.8 * VISIBILITY
    assert (second.message_id, second.body, second.receive_count) == (
        first.message_id, "again", 2)
    assert second.receipt_handle != first.receipt_handle


def test_receive_returns_at_most_max_messages(queue: MessageQueue) -> None:
    for n in range(5):
        queue.send(f"m{n}")

    messages = receive_within(queue, 5, max_messages=2)

    assert 1 <= len(messages) <= 2


def test_each_sent_message_is_delivered_once_while_the_others_stay_hidden(
    queue: MessageQueue,
) -> None:
    sent = {queue.send(f"m{n}"): f"m{n}" for n in range(7)}
    received: list[ReceivedMessage] = []
    deadline = time.monotonic() + 5
    while len(received) < len(sent) and time.monotonic() < deadline:
        received += queue.receive(3, wait_seconds=0.1)
        for message in received:
            queue.change_visibility(message, 30)  # keep them hidden past VISIBILITY

    assert sorted(m.message_id for m in received) == sorted(sent)
    assert {m.message_id: m.body for m in received} == sent


def test_receive_on_an_empty_queue_long_polls_for_about_wait_seconds(
    queue: MessageQueue,
) -> None:
    started = time.monotonic()

    messages = queue.receive(10, wait_seconds=1)

    assert messages == []
    assert time.monotonic() - started >= 0.8


def test_a_long_poll_returns_as_soon_as_a_message_arrives(queue: MessageQueue) -> None:
    sender = threading.Timer(0.3, queue.send, args=("late",))
    started = time.monotonic()
    sender.start()

    messages = queue.receive(10, wait_seconds=10)

    sender.join()
    assert [m.body for m in messages] == ["late"]
    assert time.monotonic() - started < 5


def test_a_delayed_message_stays_hidden_until_its_delay_passes(queue: MessageQueue) -> None:
    queue.send("later", delay_seconds=1)

    assert queue.receive(10, wait_seconds=0) == []
    assert queue.depth().delayed == 1
    assert receive_one(queue).body == "later"


def test_send_rejects_a_delay_sqs_does_not_allow(queue: MessageQueue) -> None:
    with pytest.raises(ValueError, match="delay_seconds"):
        queue.send("never", delay_seconds=901)


# --- visibility -----------------------------------------------------------------------------
def test_change_visibility_zero_makes_a_message_visible_at_once(queue: MessageQueue) -> None:
    queue.send("back")
    first = receive_one(queue)

    queue.change_visibility(first, 0)

    again = queue.receive(10, wait_seconds=0.5)
    assert [(m.message_id, m.receive_count) for m in again] == [(first.message_id, 2)]


def test_change_visibility_keeps_a_message_hidden_past_its_original_timeout(
    queue: MessageQueue,
) -> None:
    queue.send("long job")
    message = receive_one(queue)

    queue.change_visibility(message, 4)
    time.sleep(VISIBILITY + 0.5)

    assert queue.receive(10, wait_seconds=0) == []
    assert queue.depth().in_flight == 1


# --- deletion -------------------------------------------------------------------------------
def test_a_deleted_message_is_never_delivered_again(queue: MessageQueue) -> None:
    queue.send("done")
    message = receive_one(queue)

    queue.delete(message)

    assert_main_queue_empty(queue)
    time.sleep(VISIBILITY + 0.2)
    assert queue.receive(10, wait_seconds=0) == []


def test_delete_and_change_visibility_with_a_stale_receipt_handle_do_not_raise(
    queue: MessageQueue,
) -> None:
    queue.send("redelivered")
    stale = receive_one(queue)
    current = receive_one(queue)  # after the visibility timeout: a new delivery
    assert current.receive_count == 2

    queue.change_visibility(stale, 30)
    queue.delete(stale)
    queue.delete(current)
    queue.delete(current)  # twice: already gone


def test_a_receipt_handle_that_was_never_issued_is_ignored(queue: MessageQueue) -> None:
    queue.send("x")
    message = receive_one(queue)
    queue.change_visibility(message, 30)  # hidden well past the test, by its real handle
    forged = ReceivedMessage(message.message_id, message.receipt_handle[::-1] + "x",
                             message.body, 1)

    queue.change_visibility(forged, 0)  # neither raises …
    queue.delete(forged)

    # … nor touches the real delivery: still hidden (not made visible), still there.
    assert receive_within(queue, 1.5, max_messages=1) == []
    queue.delete(message)
    assert_main_queue_empty(queue)


# --- dead letters ---------------------------------------------------------------------------
def test_dead_letter_moves_the_body_and_reason_to_the_dead_letter_queue(
    harness: Harness,
) -> None:
    queue = harness.queue
    assert queue.has_dead_letter
    queue.send('{"not": "a job"}')
    message = receive_one(queue)

    queue.dead_letter(message, "poison: no mediaId")

    assert harness.read_dead_letters() == [('{"not": "a job"}', "poison: no mediaId")]
    assert_main_queue_empty(queue)


def test_depth_counts_visible_in_flight_and_dead_letter_messages(queue: MessageQueue) -> None:
    for n in range(4):
        queue.send(f"m{n}")
    poison, held = receive_one(queue), receive_one(queue)
    queue.change_visibility(held, 30)
    queue.dead_letter(poison, "poison")

    depth = queue.depth()

    assert (depth.visible, depth.in_flight, depth.delayed, depth.dead_letter) == (2, 1, 0, 1)


def test_dead_letters_are_listed_with_their_reason(queue: SqliteQueue | SqsQueue) -> None:
    message_id = queue.send("bad")
    queue.dead_letter(receive_one(queue), "corrupt")

    assert queue.dead_letters(10) == [(message_id, "bad", "corrupt")]
    assert queue.dead_letters(10) == [(message_id, "bad", "corrupt")]  # listing moves nothing


def test_redriven_dead_letters_are_delivered_again(queue: SqliteQueue | SqsQueue) -> None:
    queue.send("retry me")
    queue.dead_letter(receive_one(queue), "engine down")

    assert queue.redrive_dead_letters() == 1

    assert queue.depth().dead_letter == 0
    assert receive_one(queue).body == "retry me"


def test_purged_dead_letters_are_gone(queue: SqliteQueue | SqsQueue) -> None:
    for n in range(3):
        queue.send(f"m{n}")
        queue.dead_letter(receive_one(queue), "poison")

    assert queue.purge_dead_letters() == 3

    assert queue.depth().dead_letter == 0


# --- SQS only ---------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=SQS_SERVERS)
def sqs_server(request: pytest.FixtureRequest) -> str:
    """The endpoint of each SQS server."""
    return sqs_endpoint(request, request.param)


def test_sqs_without_a_dead_letter_queue_dead_letter_deletes_the_message(
    sqs_server: str, unique_name: str,
) -> None:
    url = _sqs_client(sqs_server).create_queue(QueueName=unique_name)["QueueUrl"]
    queue = SqsQueue(url, endpoint_url=sqs_server, region=REGION, access_key_id="test",
                     secret_access_key="test", visibility_timeout=VISIBILITY)
    queue.send("poison")
    message = receive_one(queue)

    assert not queue.has_dead_letter
    queue.dead_letter(message, "poison")

    assert_main_queue_empty(queue)
    assert queue.depth().dead_letter is None
    queue.close()


@pytest.mark.parametrize("call", [
    lambda q: q.receive(10, 1),
    lambda q: q.send("x"),
    lambda q: q.depth(),
    lambda q: q.delete(ReceivedMessage("m", "r", "b", 1)),
], ids=["receive", "send", "depth", "delete"])
def test_sqs_unreachable_endpoint_raises_queue_unavailable_without_secrets(
    call: Callable[[SqsQueue], object],
) -> None:
    secret = "s3cr3t-Zq9!never-print-me"
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    queue = SqsQueue(f"{endpoint}/000000000000/jobs", endpoint_url=endpoint, region=REGION,
                     access_key_id="AKIADISTINCTIVEKEY01", secret_access_key=secret)
    started = time.monotonic()

    with pytest.raises(QueueUnavailableError) as caught:
        call(queue)

    text = "".join(traceback.format_exception(caught.value))
    assert secret not in text
    assert "AKIADISTINCTIVEKEY01" not in text
    assert "127.0.0.1" in str(caught.value)  # but it does say where it tried
    assert time.monotonic() - started < 15  # retries are bounded
    queue.close()


def test_sqs_a_queue_that_does_not_exist_raises_queue_unavailable_without_secrets(
    sqs_server: str,
) -> None:
    secret = "s3cr3t-Zq9!never-print-me"
    queue = SqsQueue(f"{sqs_server}/123456789012/no-such-queue", endpoint_url=sqs_server,
                     region=REGION, access_key_id="AKIADISTINCTIVEKEY01",
                     secret_access_key=secret)

    missing = r"NonExistentQueue|QueueDoesNotExist"
    with pytest.raises(QueueUnavailableError, match=missing) as caught:
        queue.receive(1, 0)

    text = "".join(traceback.format_exception(caught.value))
    assert secret not in text
    assert "AKIADISTINCTIVEKEY01" not in text
    queue.close()


def test_sqs_an_empty_endpoint_means_aws_itself() -> None:
    queue = SqsQueue("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs", endpoint_url="",
                     region="eu-west-1", access_key_id="a", secret_access_key="b")

    assert queue._client.meta.endpoint_url == "https://sqs.eu-west-1.amazonaws.com"
    queue.close()


def test_a_received_message_says_when_it_was_sent(harness: Harness) -> None:
    before = time.time()
    harness.queue.send('{"mediaId": "sent-at"}')
    [message] = harness.queue.receive(1, wait_seconds=2)
    assert message.sent_at is not None
    assert before - 2 <= message.sent_at <= time.time() + 2


def test_sqs_credentials_that_cannot_be_refreshed_are_a_queue_outage_not_a_crash() -> None:
    from botocore.exceptions import CredentialRetrievalError

    queue = SqsQueue("https://sqs.eu-west-1.amazonaws.com/1/q", endpoint_url=None,
                     region="eu-west-1", access_key_id="key-id", secret_access_key="a-secret-1")

    def refresh_fails(**_kwargs: object) -> None:
        raise CredentialRetrievalError(provider="container-role", error_msg="endpoint down")

    queue._client.receive_message = refresh_fails
    with pytest.raises(QueueUnavailableError, match="CredentialRetrievalError"):
        queue.receive(1, wait_seconds=0)
    queue.close()
