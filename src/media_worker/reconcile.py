"""The reconciliation sweep: nothing may depend on a single message that could be lost.

A row can wait forever if its message vanished: the API's send failed after the INSERT, a
message was purged, or a worker died after its message was deleted by a redrive policy. Every
interval the sweep re-sends a job for rows PENDING for longer than any retry backoff, and for
rows PROCESSING whose lease ran out long ago. A duplicate message is harmless: the claim lets
exactly one through and the others are dropped as already finished.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from media_worker.errors import MediaWorkerError
from media_worker.observability.logging import Logger, short_error
from media_worker.operations import send_job
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaRepository
from media_worker.types import MediaStatus


class Reconciler:
    """Re-sends jobs for stranded rows, every `interval_seconds`, on its own thread."""

    def __init__(self, repository: MediaRepository, queue: MessageQueue, *,
                 interval_seconds: float, stranded_after_seconds: float, logger: Logger,
                 batch: int = 1000) -> None:
        self._repository = repository
        self._queue = queue
        self._interval = interval_seconds
        self._stranded_after = timedelta(seconds=stranded_after_seconds)
        self._log = logger
        self._batch = batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

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

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                count = self.sweep()
            except MediaWorkerError as exc:
                self._log.warning("reconciliation sweep failed", error=short_error(exc))
                continue
            if count:
                self._log.info("re-sent jobs for stranded media", count=count)
