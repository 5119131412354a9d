"""The reconciliation sweep: nothing may depend on a single message that could be lost.

A row can wait forever if its message vanished: the API's send failed after the INSERT, a
message was purged, or a worker died after its message was deleted by a redrive policy. Every
interval the sweep re-sends a job for rows PENDING for longer than any retry backoff, and for
rows PROCESSING whose lease ran out long ago. A duplicate message is harmless: the claim lets
exactly one through and the others are dropped as already finished.

Two rules keep the sweep from adding load when the system is already loaded. One replica
sweeps at a time: the one holding the repository's cross-replica lock (a PostgreSQL advisory
lock), which passes to another replica when its holder dies. And no sweep runs while the queue
is deep: rows then look stranded only because they wait behind the backlog, and re-sending
them would inflate the depth that autoscaling reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from media_worker.errors import MediaWorkerError
from media_worker.observability.logging import Logger, short_error
from media_worker.operations import send_job
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import Leadership, MediaAdmin
from media_worker.types import MediaStatus

LOCK_NAME = "media-worker-reconciler"


class Reconciler:
    """Re-sends jobs for stranded rows; `step` is one supervised turn of the sweep."""

    def __init__(self, repository: MediaAdmin, queue: MessageQueue, *,
                 stranded_after_seconds: float, max_queue_depth: int, logger: Logger,
                 batch: int = 1000) -> None:
        self._repository = repository
        self._queue = queue
        self._stranded_after = timedelta(seconds=stranded_after_seconds)
        self._max_queue_depth = max_queue_depth
        self._log = logger
        self._batch = batch
        self._leadership: Leadership | None = None

    def step(self) -> None:
        """Sweep if this replica leads and the queue is shallow; outages are only logged
        (the next turn tries again), anything else is the supervisor's to report."""
        try:
            if not self._lead():
                return
            depth = self._queue.depth()
            waiting = depth.visible + depth.delayed
            if waiting > self._max_queue_depth:
                self._log.debug("queue is deep; no reconciliation sweep", waiting=waiting)
                return
            count = self.sweep()
        except MediaWorkerError as exc:
            self._log.warning("reconciliation sweep failed", error=short_error(exc))
            return
        if count:
            self._log.info("re-sent jobs for stranded media", count=count)

    def sweep(self) -> int:
        """One pass; returns how many jobs were re-sent."""
        cutoff = datetime.now(UTC) - self._stranded_after
        pending = self._repository.list(MediaStatus.PENDING, self._batch, updated_before=cutoff)
        processing = [
            record for record in self._repository.list(
                MediaStatus.PROCESSING, self._batch, updated_before=cutoff)
            if record.lease_until is None or record.lease_until < cutoff
        ]
        for record in [*pending, *processing]:
            send_job(self._queue, record, "reconcile")
        return len(pending) + len(processing)

    def close(self) -> None:
        if self._leadership is not None:
            self._leadership.release()
            self._leadership = None

    def _lead(self) -> bool:
        if self._leadership is not None and self._leadership.held():
            return True
        self.close()  # a lock we may still hold in a session gone bad is let go first
        self._leadership = self._repository.try_lead(LOCK_NAME)
        if self._leadership is not None:
            self._log.info("this replica now runs the reconciliation sweep")
        return self._leadership is not None
