"""Keeps the queue-depth gauges current: a background sampler, because SQS only answers
questions (GetQueueAttributes) and a scrape must not wait on it."""

from __future__ import annotations

import threading
from contextlib import suppress
from datetime import UTC, datetime

from media_worker.errors import MediaWorkerError
from media_worker.observability.metrics import WorkerMetrics
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaRepository
from media_worker.types import MediaStatus


class QueueGauge:
    """Samples queue depth and the age of the oldest waiting job every `interval_seconds`."""

    def __init__(self, queue: MessageQueue, repository: MediaRepository,
                 metrics: WorkerMetrics, *, interval_seconds: float = 15.0) -> None:
        self._queue = queue
        self._repository = repository
        self._metrics = metrics
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-gauge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def sample(self) -> None:
        """One sample. The oldest PENDING row stands for the oldest message: SQS does not
        report message ages, and a row waits exactly as long as its job."""
        depth = self._queue.depth()
        oldest = self._repository.oldest_created_at(MediaStatus.PENDING)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
        self._metrics.observe_queue(depth, age)

    def _loop(self) -> None:
        while True:
            # An outage shows in /readyz; meanwhile the gauges keep their last values.
            with suppress(MediaWorkerError):
                self.sample()
            if self._stop.wait(self._interval):
                return
