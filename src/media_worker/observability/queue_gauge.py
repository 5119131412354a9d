"""Keeps the queue-depth gauges current: a background sampler, because SQS only answers
questions (GetQueueAttributes) and a scrape must not wait on it."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from media_worker.errors import MediaWorkerError
from media_worker.observability.metrics import WorkerMetrics
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaAdmin
from media_worker.types import MediaStatus

SAMPLE_INTERVAL_SECONDS = 15.0  # a Prometheus scrape interval: fresher values go unseen


class QueueGauge:
    """Samples queue depth and the age of the oldest waiting job; run as a supervised loop."""

    def __init__(self, queue: MessageQueue, repository: MediaAdmin,
                 metrics: WorkerMetrics) -> None:
        self._queue = queue
        self._repository = repository
        self._metrics = metrics

    def step(self) -> None:
        """One turn: an outage shows in /readyz, and meanwhile the gauges keep their last
        values; anything unexpected is the supervisor's to log and count."""
        with suppress(MediaWorkerError):
            self.sample()

    def sample(self) -> None:
        """One sample. The oldest PENDING row stands for the oldest message: SQS does not
        report message ages, and a row waits exactly as long as its job."""
        depth = self._queue.depth()
        oldest = self._repository.oldest_created_at(MediaStatus.PENDING)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
        self._metrics.observe_queue(depth, age)
