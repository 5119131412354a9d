"""The outbox's upkeep: events past EVENTS_MAX_AGE_SECONDS are dropped undelivered (a line
each, and `media_worker_events_dropped_total`), and the depth gauges are sampled. A supervised
loop beside the dispatchers; it also drops the rows of a target no longer configured, once
they are old enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from media_worker.errors import MediaWorkerError
from media_worker.events.dispatcher import log_dropped
from media_worker.events.outbox import OutboxStore
from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics

MAX_LINES_PER_TURN: Final = 50  # then one line with the count (a day-long outage ends here)
SAMPLE_INTERVAL_SECONDS: Final = 15.0


def keeper_interval(max_age_seconds: float) -> float:
    """Every scrape interval, or sooner when events may only live a few seconds."""
    return max(0.5, min(SAMPLE_INTERVAL_SECONDS, max_age_seconds / 4))


class OutboxKeeper:
    """Drops events too old to matter and samples the outbox gauges; `step` is one turn."""

    def __init__(self, store: OutboxStore, *, targets: Sequence[str], max_age_seconds: float,
                 logger: Logger, metrics: WorkerMetrics | None = None,
                 batch: int = 1000) -> None:
        self._store = store
        self._targets = tuple(targets)
        self._max_age = max_age_seconds
        self._log = logger
        self._metrics = metrics or WorkerMetrics()
        self._batch = batch

    def step(self) -> None:
        try:
            self.expire()
            self.sample()
        except MediaWorkerError as exc:
            self._log.warning("status events: outbox unreachable; trying again",
                              error=short_error(exc))

    def expire(self) -> int:
        """Drop every event past the maximum age; returns how many."""
        dropped = lines = 0
        while True:
            batch = self._store.expire(self._max_age, self._batch)
            now = datetime.now(UTC)
            for entry in batch:
                if lines < MAX_LINES_PER_TURN:
                    log_dropped(self._log, entry, now)
                    lines += 1
                self._metrics.events_dropped(entry.target)
            dropped += len(batch)
            if len(batch) < self._batch:
                break
        if dropped > lines:
            self._log.warning("status events dropped undelivered: older than "
                              "EVENTS_MAX_AGE_SECONDS", count=dropped, logged=lines)
        return dropped

    def sample(self) -> None:
        depth = self._store.depth()
        for target in self._targets:
            waiting = depth.get(target)
            self._metrics.observe_outbox(target, waiting.count if waiting else 0,
                                         waiting.oldest_age_seconds if waiting else None)
