"""The heartbeat: keeps every job in flight invisible to other workers and its row leased.

A step runs every third of the visibility timeout (on a supervised loop, so an exception it
did not expect is logged, counted and retried rather than ending the thread, which would let
every long job's message reappear mid-render). Each job is extended under its own lock, the
same one the processor holds for its last word on the message: a backoff or a delete is never
undone by an extension that was already under way.
"""

from __future__ import annotations

from collections.abc import Callable

from media_worker.errors import MediaWorkerError
from media_worker.jobs import InFlightJob
from media_worker.observability.logging import Logger, short_error
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaRepository


class Heartbeat:
    """Extends the visibility of messages and the leases of rows of the jobs in flight."""

    def __init__(self, *, queue: MessageQueue, repository: MediaRepository,
                 jobs: Callable[[], list[InFlightJob]], visibility_timeout: int,
                 max_job_seconds: float, logger: Logger) -> None:
        self._queue = queue
        self._repository = repository
        self._jobs = jobs
        self._visibility_timeout = visibility_timeout
        self._max_job_seconds = max_job_seconds
        self._log = logger

    @property
    def interval(self) -> float:
        """A third of the timeout: two beats may fail before a message reappears."""
        return max(1.0, self._visibility_timeout / 3)

    def beat(self) -> None:
        """One round over the jobs in flight."""
        for job in self._jobs():
            self.extend(job)

    def extend(self, job: InFlightJob) -> None:
        with job.lock:
            if job.finished.is_set():
                return
            # Measured from when a thread took the job up: time spent received ahead, waiting
            # for a slot, is not the job running away.
            if job.running_seconds > self._max_job_seconds:
                return  # a runaway: let its message and lease lapse so another worker retries
            try:
                self._queue.change_visibility(job.message, self._visibility_timeout)
                if job.claim is not None:
                    self._repository.extend_lease(job.claim, self._visibility_timeout)
            except MediaWorkerError as exc:
                self._log.warning("heartbeat failed", messageId=job.message.message_id,
                                  error=short_error(exc))
