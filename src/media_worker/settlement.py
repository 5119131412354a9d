"""The processor's last word on a message: delete it, hide it for a while, or move it aside.

Each is done under the job's settling lock (shared with the heartbeat), so no extension can
land after it, and a hidden message notes when it is due back, which a draining poller waits
for. A queue that cannot be reached here is logged, never raised: the message then simply
returns after its visibility timeout, which the status machine already allows for.
"""

from __future__ import annotations

from media_worker.errors import QueueUnavailableError
from media_worker.jobs import InFlightJob
from media_worker.observability.logging import Logger, short_error
from media_worker.outcomes import retry_delay
from media_worker.queue.port import MessageQueue


class Settlement:
    """Queue operations that end a delivery."""

    def __init__(self, queue: MessageQueue, *, retry_base_seconds: float,
                 retry_max_seconds: float) -> None:
        self._queue = queue
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds

    def back_off(self, job: InFlightJob, log: Logger) -> None:
        """Hide a failed job's message for a backoff that grows with its receive count."""
        self.delay(job, retry_delay(job.message.receive_count, self._retry_base,
                                    self._retry_max), log)

    def delay(self, job: InFlightJob, seconds: int, log: Logger) -> None:
        """Hide the message for `seconds` and note when it is due back."""
        try:
            with job.settling():
                self._queue.change_visibility(job.message, seconds)
        except QueueUnavailableError as exc:
            log.warning("could not delay the message; it returns after its visibility timeout",
                        error=short_error(exc))
            return
        job.returns_in = seconds

    def delete(self, job: InFlightJob, log: Logger) -> None:
        try:
            with job.settling():
                self._queue.delete(job.message)
        except QueueUnavailableError as exc:
            # The row is already final: the redelivery finds it finished and deletes then.
            log.warning("could not delete the message; its redelivery will be skipped",
                        error=short_error(exc))

    def dead_letter(self, job: InFlightJob, reason: str, log: Logger) -> None:
        where = "dead-letter queue" if self._queue.has_dead_letter else "nowhere (deleted)"
        log.error("poison message", reason=reason, movedTo=where)
        try:
            with job.settling():
                self._queue.dead_letter(job.message, reason)
        except QueueUnavailableError as exc:
            log.warning("could not move poison message; it will come back",
                        error=short_error(exc))
