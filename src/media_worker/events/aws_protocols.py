"""The two batch calls the AWS event targets make, as bytes on the wire and back:
SQS `SendMessageBatch` in the AWS JSON 1.0 protocol, SNS `PublishBatch` in the query protocol
(a form POST answered in XML). What their answers look like, success and failure, is in
tests/unit/aws_answers/, beside the tests of these parsers.

Entry `Id`s are the events' indexes in the batch. Every entry carries the event type as the
message attribute `type` (SNS subscription filter policies can select on it); a FIFO queue or
topic also gets the media id as MessageGroupId and the event id as MessageDeduplicationId
(aws_batch.py says why).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode
from xml.etree import ElementTree

from media_worker.events.http_post import Answer
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport

SQS_JSON: Final = "application/x-amz-json-1.0"
FORM: Final = "application/x-www-form-urlencoded; charset=utf-8"
SNS_VERSION: Final = "2010-03-31"
REASON_LIMIT: Final = 200


@dataclass(frozen=True)
class Entry:
    """One event of a batch, as both calls need it."""

    index: int
    event: OutboxEntry
    fifo: Mapping[str, str]  # MessageGroupId and MessageDeduplicationId, or nothing


# --- SQS: AWS JSON 1.0 ---------------------------------------------------------------------
def sqs_request(queue_url: str, entries: Sequence[Entry]) -> tuple[bytes, dict[str, str]]:
    body = {"QueueUrl": queue_url, "Entries": [
        {"Id": str(entry.index), "MessageBody": entry.event.payload,
         "MessageAttributes": {"type": {"DataType": "String",
                                        "StringValue": _type(entry.event)}},
         **entry.fifo}
        for entry in entries]}
    headers = {"Content-Type": SQS_JSON, "X-Amz-Target": "AmazonSQS.SendMessageBatch"}
    return json.dumps(body, ensure_ascii=False).encode(), headers


def sqs_report(answer: Answer, events: Sequence[OutboxEntry]) -> DeliveryReport:
    """The batch's result; an error answer or an unreadable one fails every event."""
    try:
        parsed = json.loads(answer.body) if answer.body else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return all_failed(events, f"SQS answered HTTP {answer.status} with no JSON")
    if answer.status != 200:
        code = str(parsed.get("__type", "error")).rsplit("#", 1)[-1]
        message = parsed.get("message") or parsed.get("Message") or ""
        return all_failed(events, _refusal("SQS", answer.status, code, str(message)))
    successful, failed = _listed(parsed, "Successful"), _listed(parsed, "Failed")
    garbled = [item for event, item in _named(events, successful)
               if item.get("MD5OfMessageBody") not in (None, _md5(event.payload))]
    for item in garbled:  # what botocore's client checks: the queue holds what was sent
        successful.remove(item)
        failed.append({"Id": item["Id"], "Code": "MD5OfMessageBody",
                       "Message": "the queue stored a body other than the one sent"})
    return _report(events, successful, failed)


def _listed(parsed: Mapping[str, Any], name: str) -> list[Any]:
    value = parsed.get(name)
    return list(value) if isinstance(value, list) else []


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# --- SNS: query protocol -------------------------------------------------------------------
def sns_request(topic_arn: str, entries: Sequence[Entry]) -> tuple[bytes, dict[str, str]]:
    fields: dict[str, str] = {"Action": "PublishBatch", "Version": SNS_VERSION,
                              "TopicArn": topic_arn}
    for number, entry in enumerate(entries, start=1):
        member = f"PublishBatchRequestEntries.member.{number}"
        attribute = f"{member}.MessageAttributes.entry.1"
        fields |= {f"{member}.Id": str(entry.index), f"{member}.Message": entry.event.payload,
                   f"{attribute}.Name": "type", f"{attribute}.Value.DataType": "String",
                   f"{attribute}.Value.StringValue": _type(entry.event)}
        fields |= {f"{member}.{name}": value for name, value in entry.fifo.items()}
    return urlencode(fields).encode(), {"Content-Type": FORM}


def sns_report(answer: Answer, events: Sequence[OutboxEntry]) -> DeliveryReport:
    try:
        root = ElementTree.fromstring(answer.body) if answer.body else None
    except ElementTree.ParseError:
        root = None
    if root is None:
        return all_failed(events, f"SNS answered HTTP {answer.status} with no XML")
    if answer.status != 200:
        error = _child(root, "Error")
        code = _text(error, "Code") or "error"
        return all_failed(events, _refusal("SNS", answer.status, code,
                                            _text(error, "Message")))
    result = _child(root, "PublishBatchResult")
    return _report(events, _members(result, "Successful"), _members(result, "Failed"))


def _members(result: ElementTree.Element | None, name: str) -> list[dict[str, str]]:
    listing = _child(result, name)
    if listing is None:
        return []
    return [{_local(field.tag): field.text or "" for field in member} for member in listing]


def _child(element: ElementTree.Element | None, name: str) -> ElementTree.Element | None:
    """The first child called `name`, whatever its namespace."""
    if element is None:
        return None
    return next((child for child in element if _local(child.tag) == name), None)


def _text(element: ElementTree.Element | None, name: str) -> str:
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- both ----------------------------------------------------------------------------------
def _type(event: OutboxEntry) -> str:
    return event.event_type or "unknown"


def _report(events: Sequence[OutboxEntry], successful: Any, failed: Any) -> DeliveryReport:
    """Entries named by neither list are left out: the dispatcher hands them back untried."""
    delivered = frozenset(event.event_id for event, _ in _named(events, successful))
    reasons = {event.event_id: _reason(item) for event, item in _named(events, failed)}
    return DeliveryReport(delivered, reasons)


def _named(events: Sequence[OutboxEntry],
           listing: Any) -> list[tuple[OutboxEntry, Mapping[str, Any]]]:
    """The events an answer's list names by `Id`, with the list's item; other items (an `Id`
    this batch did not send) are ignored."""
    named = []
    for item in listing if isinstance(listing, list) else ():
        value = str(item.get("Id", "")) if isinstance(item, Mapping) else ""
        if value.isdigit() and int(value) < len(events):
            named.append((events[int(value)], item))
    return named


def _reason(item: Mapping[str, Any]) -> str:
    return f"{item.get('Code', 'error')}: {item.get('Message', '')}".strip(": ")[:REASON_LIMIT]


def _refusal(service: str, status: int, code: str, message: str) -> str:
    return f"{service} refused the batch (HTTP {status}): {code}: {message}".strip(": ")[
        :REASON_LIMIT]


def all_failed(events: Sequence[OutboxEntry], reason: str) -> DeliveryReport:
    return DeliveryReport(failed={event.event_id: reason for event in events})
