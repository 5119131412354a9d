"""The SQS and SNS batch calls of the event targets (events/aws_protocols.py): what they send,
and how they read the answers moto and LocalStack really gave (tests/unit/aws_answers/)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from media_worker.events.aws_protocols import (
    Entry,
    sns_report,
    sns_request,
    sqs_report,
    sqs_request,
)
from media_worker.events.http_post import Answer
from media_worker.events.outbox import OutboxEntry

ANSWERS = Path(__file__).parent / "aws_answers"
PAYLOAD = '{"type":"media.ready"}'  # the body the recorded answers' MD5s are of
QUEUE = "http://127.0.0.1:4566/000000000000/events.fifo"
TOPIC = "arn:aws:sns:us-east-1:000000000000:events.fifo"


def event(payload: str = PAYLOAD, event_type: str = "media.ready") -> OutboxEntry:
    return OutboxEntry(seq=1, target="sqs", event_id=str(uuid.uuid4()), media_id="m1",
                       event_type=event_type, payload=payload, attempts=0,
                       created_at=datetime.now(UTC))


def recorded(name: str) -> Answer:
    answer = json.loads((ANSWERS / f"{name}.json").read_text())
    return Answer(answer["status"], answer["body"].encode())


def entries(*events: OutboxEntry, fifo: bool = True) -> list[Entry]:
    return [Entry(index, e, {"MessageGroupId": e.media_id,
                             "MessageDeduplicationId": e.event_id} if fifo else {})
            for index, e in enumerate(events)]


# --- SQS -------------------------------------------------------------------------------------
def test_sqs_request_is_a_json_send_message_batch_with_the_type_and_fifo_fields() -> None:
    first, second = event("{\"été\": 1}", "media.processing"), event()
    body, headers = sqs_request(QUEUE, entries(first, second))
    assert headers == {"Content-Type": "application/x-amz-json-1.0",
                       "X-Amz-Target": "AmazonSQS.SendMessageBatch"}
    sent = json.loads(body)
    assert sent["QueueUrl"] == QUEUE
    assert sent["Entries"][0] == {
        "Id": "0", "MessageBody": first.payload,
        "MessageAttributes": {"type": {"DataType": "String", "StringValue": "media.processing"}},
        "MessageGroupId": "m1", "MessageDeduplicationId": first.event_id}
    assert sent["Entries"][1]["Id"] == "1"


def test_a_standard_queue_gets_no_group_or_deduplication_id() -> None:
    body, _ = sqs_request(QUEUE, entries(event(), fifo=False))
    assert set(json.loads(body)["Entries"][0]) == {"Id", "MessageBody", "MessageAttributes"}


def test_sqs_batch_sent_delivers_every_event() -> None:
    events = [event(), event()]
    report = sqs_report(recorded("sqs-batch-sent"), events)
    assert report.delivered == {e.event_id for e in events}
    assert not report.failed


def test_sqs_entry_refused_fails_that_event_only_with_the_services_reason() -> None:
    events = [event(), event("bad \x00 body")]
    report = sqs_report(recorded("sqs-batch-one-refused"), events)
    assert report.delivered == {events[0].event_id}
    assert report.failed[events[1].event_id].startswith(
        "InvalidMessageContents: Invalid characters found.")


def test_sqs_answer_whose_md5_is_of_another_body_fails_that_event() -> None:
    events = [event(), event('{"type":"media.failed"}')]
    report = sqs_report(recorded("sqs-batch-sent"), events)
    assert report.delivered == {events[0].event_id}
    assert report.failed[events[1].event_id].startswith("MD5OfMessageBody")


def test_sqs_missing_queue_fails_every_event_naming_the_code() -> None:
    events = [event(), event()]
    for server in ("moto", "localstack"):
        report = sqs_report(recorded(f"sqs-no-such-queue-{server}"), events)
        assert report.delivered == frozenset()
        assert set(report.failed.values()) == {
            "SQS refused the batch (HTTP 400): QueueDoesNotExist: "
            "The specified queue does not exist."}


def test_sqs_answer_that_is_not_json_fails_every_event_with_its_status() -> None:
    events = [event()]
    report = sqs_report(Answer(502, b"<html>Bad Gateway</html>"), events)
    assert report.failed == {events[0].event_id: "SQS answered HTTP 502 with no JSON"}


def test_sqs_answer_naming_ids_not_sent_is_ignored_for_those() -> None:
    events = [event()]
    answer = Answer(200, json.dumps({"Successful": [{"Id": "0"}, {"Id": "7"}, {"Id": "x"}],
                                     "Failed": [{"Id": "3", "Code": "X"}]}).encode())
    report = sqs_report(answer, events)
    assert report.delivered == {events[0].event_id}
    assert not report.failed


# --- SNS -------------------------------------------------------------------------------------
def test_sns_request_is_a_query_publish_batch_with_the_type_and_fifo_fields() -> None:
    first = event("{\"été\": \"a&b=c\"}")
    body, headers = sns_request(TOPIC, entries(first))
    assert headers == {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
    member = "PublishBatchRequestEntries.member.1"
    attribute = f"{member}.MessageAttributes.entry.1"
    assert form == {
        "Action": "PublishBatch", "Version": "2010-03-31", "TopicArn": TOPIC,
        f"{member}.Id": "0", f"{member}.Message": first.payload,
        f"{attribute}.Name": "type", f"{attribute}.Value.DataType": "String",
        f"{attribute}.Value.StringValue": "media.ready",
        f"{member}.MessageGroupId": "m1", f"{member}.MessageDeduplicationId": first.event_id}


def test_sns_batch_published_delivers_every_event() -> None:
    events = [event(), event()]
    report = sns_report(recorded("sns-batch-published"), events)
    assert report.delivered == {e.event_id for e in events}
    assert not report.failed


def test_sns_missing_topic_fails_every_event_naming_the_code() -> None:
    events = [event()]
    report = sns_report(recorded("sns-no-such-topic"), events)
    assert report.failed == {
        events[0].event_id: "SNS refused the batch (HTTP 404): NotFound: Topic does not exist"}


def test_sns_entry_refused_fails_that_event_only() -> None:
    events = [event(), event()]
    body = ("<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
            "<PublishBatchResult><Successful><member><Id>0</Id><MessageId>a</MessageId>"
            "</member></Successful><Failed><member><Id>1</Id><Code>InvalidParameter</Code>"
            "<Message>too big</Message><SenderFault>true</SenderFault></member></Failed>"
            "</PublishBatchResult></PublishBatchResponse>")
    report = sns_report(Answer(200, body.encode()), events)
    assert report.delivered == {events[0].event_id}
    assert report.failed == {events[1].event_id: "InvalidParameter: too big"}


def test_sns_answer_that_is_not_xml_fails_every_event_with_its_status() -> None:
    events = [event()]
    report = sns_report(Answer(503, b"Service Unavailable"), events)
    assert report.failed == {events[0].event_id: "SNS answered HTTP 503 with no XML"}
