"""A delivery whose row this worker could not claim: the row is finished (the message is a
duplicate), held by another worker's live lease (look again when it can end), or not there
yet (an API that sends the job inside its transaction commits the row a moment later: look
again soon, for MISSING_ROW_GRACE_SECONDS from the message's sending)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from media_worker.errors import TransientError
from media_worker.jobs import InFlightJob
from media_worker.observability.logging import Logger, short_error
from media_worker.outcomes import Outcome, missing_row_delay, until_lease_ends
from media_worker.repository.port import MediaRepository
from media_worker.settlement import Settlement
from media_worker.types import MediaStatus


@dataclass(frozen=True)
class Unclaimed:
    """Settles the message of a row the claim did not get."""

    repository: MediaRepository
    settle: Settlement
    lease_seconds: int
    missing_row_grace_seconds: float

    def settled(self, media_id: str, job: InFlightJob, log: Logger) -> Outcome:
        try:
            record = self.repository.get(media_id)
        except TransientError as exc:
            log.warning("lookup failed, will retry", error=short_error(exc))
            self.settle.back_off(job, log)
            return Outcome.DEFERRED
        if record is None:
            return self._await_row(job, log)
        if record.status in (MediaStatus.READY, MediaStatus.FAILED):
            log.info("already finished; dropping the duplicate message", status=record.status)
        else:
            delay = until_lease_ends(record.lease_until, self.lease_seconds)
            log.info("held by another worker's live lease; looking again when it can end",
                     status=record.status, retryInSeconds=delay)
            self.settle.delay(job, delay, log)
            return Outcome.HELD
        self.settle.delete(job, log)
        return Outcome.SKIPPED

    def _await_row(self, job: InFlightJob, log: Logger) -> Outcome:
        message = job.message
        age = time.time() - message.sent_at if message.sent_at is not None else None
        if age is not None and age < self.missing_row_grace_seconds:
            delay = missing_row_delay(message.receive_count)
            log.info("no media row yet; looking again soon", retryInSeconds=delay,
                     messageAgeSeconds=round(age, 1))
            self.settle.delay(job, delay, log)
            return Outcome.AWAITING_ROW
        log.warning("no such media row; dropping the message",
                    graceSeconds=self.missing_row_grace_seconds)
        self.settle.delete(job, log)
        return Outcome.SKIPPED
