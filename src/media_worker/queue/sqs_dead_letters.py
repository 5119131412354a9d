"""`media-worker dlq` on SQS: peek at, redrive and purge the dead-letter queue.

A mixin of SqsQueue: it works through the queue's own calls (`_receive_raw`, `_send`,
`_delete`, `_change_visibility_raw`), so retries, error translation and FIFO fields are the
same as the worker's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

MAX_BATCH = 10
REASON_ATTRIBUTE = "DeadLetterReason"
ORIGINAL_ID_ATTRIBUTE = "OriginalMessageId"
# Operator scans (dead_letters, redrive, purge) hide what they hold this long, and wait this
# long for more (a zero wait samples only some SQS servers and may miss messages).
SCAN_VISIBILITY_SECONDS = 60
SCAN_WAIT_SECONDS = 1


class SqsDeadLetterAdmin:
    """The DeadLetterAdmin side of the queue port on SQS."""

    _queue_url: str
    _dlq_url: str | None

    if TYPE_CHECKING:  # SqsQueue's calls, which this side works through
        def _receive_raw(self, queue_url: str, max_messages: int, wait: int,
                         visibility: int) -> list[dict[str, Any]]: ...

        def _send(self, queue_url: str, body: str, delay_seconds: int) -> str: ...

        def _delete(self, queue_url: str, receipt_handle: str) -> None: ...

        def _change_visibility_raw(self, queue_url: str, receipt_handle: str,
                                   timeout: int) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """Peek at up to `limit` dead letters as (original message id, body, reason).

        SQS has no peek: the messages are received, then made visible again at once.
        """
        if self._dlq_url is None:
            return []
        held = self._scan(self._dlq_url, limit)
        for raw in held:
            self._change_visibility_raw(self._dlq_url, raw["ReceiptHandle"], 0)
        return [_describe_dead_letter(raw) for raw in held]

    def redrive_dead_letters(self) -> int:
        """Move every dead letter back to the main queue; returns how many moved."""
        if self._dlq_url is None:
            return 0
        moved = 0
        while batch := self._receive_raw(self._dlq_url, MAX_BATCH, SCAN_WAIT_SECONDS,
                                         SCAN_VISIBILITY_SECONDS):
            for raw in batch:
                self._send(self._queue_url, raw["Body"], 0)
                self._delete(self._dlq_url, raw["ReceiptHandle"])
            moved += len(batch)
        return moved

    def purge_dead_letters(self) -> int:
        """Delete every dead letter; returns how many.

        Not PurgeQueue: that is asynchronous, allowed once a minute and counts nothing.
        """
        if self._dlq_url is None:
            return 0
        purged = 0
        while batch := self._receive_raw(self._dlq_url, MAX_BATCH, SCAN_WAIT_SECONDS,
                                         SCAN_VISIBILITY_SECONDS):
            for raw in batch:
                self._delete(self._dlq_url, raw["ReceiptHandle"])
            purged += len(batch)
        return purged

    def _scan(self, queue_url: str, limit: int) -> list[dict[str, Any]]:
        """Receive up to `limit` messages, hidden long enough for an operator command."""
        held: dict[str, dict[str, Any]] = {}
        while len(held) < limit:
            batch = self._receive_raw(queue_url, min(MAX_BATCH, limit - len(held)),
                                      SCAN_WAIT_SECONDS, SCAN_VISIBILITY_SECONDS)
            if not batch:
                break
            held.update((raw["MessageId"], raw) for raw in batch)
        return list(held.values())


def _describe_dead_letter(raw: dict[str, Any]) -> tuple[str, str, str]:
    """(original id, body, reason); messages SQS's own redrive policy moved carry neither."""
    attributes = raw.get("MessageAttributes", {})
    original = attributes.get(ORIGINAL_ID_ATTRIBUTE, {}).get("StringValue", raw["MessageId"])
    reason = attributes.get(REASON_ATTRIBUTE, {}).get(
        "StringValue", "moved by the queue's redrive policy"
    )
    return original, raw.get("Body", ""), reason
