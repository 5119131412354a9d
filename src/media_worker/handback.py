"""Giving jobs back on shutdown: a message received ahead goes back at once for another
worker to take; a job that outlived the grace period has its row released and its message
made visible at once, rather than both waiting out their lease and visibility timeout.

Each hand-back is the job's last word on its message, said under the job's settling lock, so
a heartbeat extension already under way cannot land after it and hide the message again.
"""

from __future__ import annotations

from media_worker.errors import MediaWorkerError
from media_worker.jobs import InFlightJob
from media_worker.observability.logging import Logger, short_error
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaRepository

SHUTDOWN_ERROR = "interrupted by worker shutdown"


def hand_back_unstarted(queue: MessageQueue, jobs: list[InFlightJob], log: Logger) -> None:
    """Make messages received ahead, whose jobs never started, visible again at once."""
    for job in jobs:
        try:
            with job.settling():
                queue.change_visibility(job.message, 0)
        except MediaWorkerError as exc:
            log.warning("could not hand back a message received ahead; it returns after its "
                        "visibility timeout", messageId=job.message.message_id,
                        error=short_error(exc))
    if jobs:
        log.info("handed back messages received ahead", messages=len(jobs))


def abandon(queue: MessageQueue, repository: MediaRepository, job: InFlightJob,
            log: Logger) -> None:
    """Give an unfinished job back: its row to PENDING, its message visible at once."""
    job.finished.set()  # the heartbeat must not extend it again
    log.warning("job did not finish within the grace period; handing it back",
                messageId=job.message.message_id)
    try:
        if job.claim is not None:
            repository.release(job.claim, SHUTDOWN_ERROR)
    except MediaWorkerError as exc:
        log.warning("could not release the row; its lease will expire", error=short_error(exc))
    try:
        with job.settling():
            queue.change_visibility(job.message, 0)
    except MediaWorkerError as exc:
        log.warning("could not make the message visible; it returns after its visibility "
                    "timeout", error=short_error(exc))
