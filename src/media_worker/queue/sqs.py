"""The queue port on Amazon SQS and every SQS-compatible server (LocalStack, ElasticMQ, moto).

boto3 does the retrying (standard mode: jittered backoff on throttling, 5xx and dropped
connections); this adapter only shapes the calls and turns what is left of a failure into
QueueUnavailableError, with a message that never carries a credential.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from media_worker.aws_access import (
    QUEUE_DEVELOPMENT_KEYS,
    QUEUE_KEY_VARIABLES,
    OpenedSession,
    ServiceAccess,
    open_session,
)
from media_worker.errors import QueueUnavailableError
from media_worker.queue.port import AWS_TRACE_HEADER, QueueDepth, ReceivedMessage
from media_worker.queue.sqs_dead_letters import (
    MAX_BATCH,
    ORIGINAL_ID_ATTRIBUTE,
    REASON_ATTRIBUTE,
    SqsDeadLetterAdmin,
)
from media_worker.settings_views import redact_url

MAX_WAIT_SECONDS = 20
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200
RECEIVE_COUNT_ATTRIBUTE = "ReceiveCount"
# Asked for on every receive: the receive count, the sending time, and an X-Ray trace header.
SYSTEM_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", AWS_TRACE_HEADER)
MAX_REASON_CHARS = 1024
MIN_SCRUBBED_CHARS = 8
# SQS names a receipt handle that is no longer current in several ways, depending on the call
# and the server; all of them mean "someone else owns this delivery now".
STALE_HANDLE_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"}
)
CREDENTIAL_CODES = frozenset({
    "InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
    "UnrecognizedClientException", "ExpiredToken", "InvalidAccessKeyId",
    "MissingAuthenticationToken",
})


def _client_config(region: str, max_pool_connections: int) -> Config:
    """Retries by botocore; the read timeout outlasts the longest long poll (20 s)."""
    return Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=MAX_WAIT_SECONDS + 15,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _attribute_safe(text: str) -> str:
    """SQS attribute values allow only XML characters and must not be empty."""
    cleaned = "".join(
        ch if ch in "\t\n\r" or "\x20" <= ch <= "\ud7ff" or "\ue000" <= ch <= "\ufffd"
        or ch >= "\U00010000" else "?"
        for ch in text[:MAX_REASON_CHARS]
    )
    return cleaned or "unspecified"


class SqsQueue(SqsDeadLetterAdmin):
    """A MessageQueue on one SQS queue, with an optional dead-letter queue (whose operator
    commands live in sqs_dead_letters.py)."""

    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session: OpenedSession | None = None,
        dlq_url: str | None = None,
        visibility_timeout: int = 300,
        max_pool_connections: int = 32,
    ) -> None:
        """`session` carries credentials resolved by `aws_access.open_session`; without one,
        the keys given here (or, when None, boto3's chain) are used.
        `max_pool_connections`: at least the threads that call at once (jobs, the poller,
        the heartbeat, the gauge); more costs nothing, as connections open on demand."""
        opened = session or open_session(ServiceAccess(
            "queue", endpoint_url, region, access_key_id, secret_access_key, None,
            QUEUE_KEY_VARIABLES, QUEUE_DEVELOPMENT_KEYS))
        self._queue_url = queue_url
        self._dlq_url = dlq_url or None
        self._visibility_timeout = _clamp(visibility_timeout, 0, MAX_VISIBILITY_SECONDS)
        self._credential_source = opened.credential_source
        # Scrubbed from every error text. Too short a value ("test", LocalStack's default) is
        # no secret, and replacing it would garble ordinary words.
        self._secrets = tuple(s for s in opened.secrets if len(s) >= MIN_SCRUBBED_CHARS)
        self._client = opened.session.client(
            "sqs", endpoint_url=endpoint_url or None,
            config=_client_config(region, max_pool_connections),
        )

    # --- the port ---------------------------------------------------------------------------
    @property
    def has_dead_letter(self) -> bool:
        return self._dlq_url is not None

    def send(self, body: str, delay_seconds: int = 0,
             attributes: Mapping[str, str] | None = None) -> str:
        return self._send(self._queue_url, body, delay_seconds, attributes or {})

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        # Round a fractional wait up: a zero wait is a short poll that samples only some
        # servers, which is not what a caller asking for any wait at all wants.
        wait = _clamp(math.ceil(wait_seconds), 0, MAX_WAIT_SECONDS)
        return [
            _to_received(raw)
            for raw in self._receive_raw(self._queue_url, max_messages, wait,
                                         self._visibility_timeout)
        ]

    def delete(self, message: ReceivedMessage) -> None:
        self._delete(self._queue_url, message.receipt_handle)

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        timeout = _clamp(timeout_seconds, 0, MAX_VISIBILITY_SECONDS)
        self._change_visibility_raw(self._queue_url, message.receipt_handle, timeout)

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Copy the body to the DLQ (with why and where from), then delete the original.

        Sending first means a crash in between leaves a duplicate, never a lost message.
        """
        if self._dlq_url is not None:
            attributes = {
                REASON_ATTRIBUTE: {"DataType": "String", "StringValue": _attribute_safe(reason)},
                ORIGINAL_ID_ATTRIBUTE: {"DataType": "String",
                                        "StringValue": _attribute_safe(message.message_id)},
                RECEIVE_COUNT_ATTRIBUTE: {"DataType": "Number",
                                          "StringValue": str(message.receive_count)},
            }
            with self._translated("SendMessage"):
                self._client.send_message(QueueUrl=self._dlq_url, MessageBody=message.body,
                                          MessageAttributes=attributes)
        self.delete(message)

    def depth(self) -> QueueDepth:
        counts = self._counts(self._queue_url)
        dead = sum(self._counts(self._dlq_url)) if self._dlq_url is not None else None
        return QueueDepth(visible=counts[0], in_flight=counts[1], delayed=counts[2],
                          dead_letter=dead)

    def close(self) -> None:
        self._client.close()

    # --- calls ------------------------------------------------------------------------------
    def _send(self, queue_url: str, body: str, delay_seconds: int,
              attributes: Mapping[str, str] | None = None) -> str:
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be 0-{MAX_DELAY_SECONDS}, not {delay_seconds}")
        extra: dict[str, Any] = _fifo_fields(body) if queue_url.endswith(".fifo") else {
            "DelaySeconds": delay_seconds}
        extra |= _attribute_fields(attributes or {})
        with self._translated("SendMessage"):
            response = self._client.send_message(QueueUrl=queue_url, MessageBody=body, **extra)
        return str(response["MessageId"])

    def _receive_raw(self, queue_url: str, max_messages: int, wait: int,
                     visibility: int) -> list[dict[str, Any]]:
        with self._translated("ReceiveMessage"):
            response = self._client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=_clamp(max_messages, 1, MAX_BATCH),
                WaitTimeSeconds=wait,
                VisibilityTimeout=visibility,
                MessageSystemAttributeNames=list(SYSTEM_ATTRIBUTES),
                # The deprecated spelling too, for servers that predate the new one.
                AttributeNames=list(SYSTEM_ATTRIBUTES),
                MessageAttributeNames=["All"],
            )
        return list(response.get("Messages", []))

    def _delete(self, queue_url: str, receipt_handle: str) -> None:
        with self._translated("DeleteMessage", ignore_stale_handle=True):
            self._client.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)

    def _change_visibility_raw(self, queue_url: str, receipt_handle: str, timeout: int) -> None:
        with self._translated("ChangeMessageVisibility", ignore_stale_handle=True):
            self._client.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
            )

    def _counts(self, queue_url: str) -> tuple[int, int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        with self._translated("GetQueueAttributes"):
            attributes = self._client.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=names
            ).get("Attributes", {})
        visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in names)
        return visible, in_flight, delayed

    # --- errors -------------------------------------------------------------------------------
    @contextmanager
    def _translated(self, operation: str, *, ignore_stale_handle: bool = False) -> Iterator[None]:
        """Turn what botocore's retries gave up on into QueueUnavailableError.

        Every rejection counts, not only 5xx and throttling: a missing queue or a denied
        credential is something an operator fixes while the worker waits and retries, and
        the poller only survives QueueUnavailableError. A stale receipt handle is normal
        (the message was redelivered to someone else) and is ignored, as SQS semantics
        intend. Chaining is cut (`from None`): the message already says what failed, and a
        traceback then holds nothing but what this adapter chose to write.
        """
        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            if ignore_stale_handle and code in STALE_HANDLE_CODES:
                return
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            detail = str(exc.response.get("Error", {}).get("Message", ""))[:200]
            text = f"SQS {operation} failed: {code} (HTTP {status})"
            if code in CREDENTIAL_CODES or status == 403:
                text += f" (credentials from {self._credential_source}: check them and the policy)"
            raise QueueUnavailableError(
                self._scrub(f"{text}: {detail}" if detail else text)
            ) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise QueueUnavailableError(
                self._scrub(f"SQS {operation} failed: {type(exc).__name__}: {redact_url(str(exc))}")
            ) from None
        except NoCredentialsError:
            raise QueueUnavailableError(
                f"SQS {operation} failed: {self._credential_source}") from None
        except BotoCoreError as exc:  # e.g. credentials that could not be refreshed
            raise QueueUnavailableError(self._scrub(
                f"SQS {operation} failed: {type(exc).__name__}: {redact_url(str(exc))}")
            ) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _error_code(exc: ClientError) -> str:
    """The error code without the `AWS.SimpleQueueService.` prefix some servers add."""
    code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return code.rsplit(".", 1)[-1]


def _to_received(raw: dict[str, Any]) -> ReceivedMessage:
    attributes = raw.get("Attributes", {})
    sent_ms = attributes.get("SentTimestamp")
    return ReceivedMessage(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        sent_at=int(sent_ms) / 1000 if sent_ms else None,
        attributes=_string_attributes(raw),
    )


def _string_attributes(raw: dict[str, Any]) -> dict[str, str]:
    """The message's String attributes, and the X-Ray trace header when SQS has one."""
    found = {name: str(value["StringValue"])
             for name, value in raw.get("MessageAttributes", {}).items()
             if str(value.get("DataType", "")).startswith("String") and "StringValue" in value}
    trace_header = raw.get("Attributes", {}).get(AWS_TRACE_HEADER)
    if trace_header:
        found[AWS_TRACE_HEADER] = str(trace_header)
    return found


def _attribute_fields(attributes: Mapping[str, str]) -> dict[str, Any]:
    """SendMessage's fields for `attributes`: AWS_TRACE_HEADER is a system attribute, the
    others message attributes of type String."""
    fields: dict[str, Any] = {}
    strings = {name: {"DataType": "String", "StringValue": value}
               for name, value in attributes.items() if name != AWS_TRACE_HEADER}
    if strings:
        fields["MessageAttributes"] = strings
    if AWS_TRACE_HEADER in attributes:
        fields["MessageSystemAttributes"] = {AWS_TRACE_HEADER: {
            "DataType": "String", "StringValue": attributes[AWS_TRACE_HEADER]}}
    return fields


def _fifo_fields(body: str) -> dict[str, str]:
    """FIFO queues need a message group and a deduplication id.

    The group is the media id: order is kept per media, and a message that keeps failing
    blocks only its own media rather than every job behind it. The deduplication id is unique,
    so a deliberate re-send (retry, backfill) is never swallowed by the 5-minute window.
    Per-message delays do not exist on FIFO queues, so none is sent."""
    try:
        payload = json.loads(body)
        group = str(payload.get("mediaId") or "media-worker") if isinstance(payload, dict) else (
            "media-worker")
    except ValueError:
        group = "media-worker"
    return {"MessageGroupId": group[:128], "MessageDeduplicationId": uuid.uuid4().hex}
