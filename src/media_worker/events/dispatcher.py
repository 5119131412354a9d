"""The dispatcher: delivers one target's outbox rows, then deletes them. One per configured
target, each on its own supervised loop, so a target that hangs delays only its own events.

A round takes a batch of rows (OutboxStore.lease: the oldest, never two replicas on one media
at a time) and sends them in waves: each wave holds the first undelivered event of up to
`max_batch` media, so no call can put one media's events out of order, and a media whose
event failed sends nothing more this round. A target that keeps the order of a batch within a
media (SQS and SNS FIFO: a batch is enqueued in the order sent, per message group) takes the
next `max_batch` events oldest first instead, several of a media in one call: one call per
ten events rather than one per event of a media. Should such a call refuse an event and take
a later one of the same media, the later one is out already; the refused one follows on its
retry (the one case of a media's events arriving out of order, and only for an event the
service refuses while taking the next). Delivered rows are deleted; a failed one waits
for its next try (attempts + 1, a backoff that doubles up to ROW_BACKOFF_MAX_SECONDS, kept in
the row so it survives restarts and holds across replicas); rows not tried are handed back.
A wave that fails entirely means the target is down: it is paused, in this process, for a
backoff that doubles up to TARGET_BACKOFF_MAX_SECONDS. Both backoffs are tenacity's
exponential wait with jitter, asked for one delay at a time: the retrying itself is rounds of
a loop across time and processes, which no retry decorator can wrap.

At least once: a row is deleted only after its target accepted it; a dispatcher that dies
mid-delivery leaves its rows taken until their lease runs out, and then any replica sends
them again (with the same event id, for the receiver's deduplication). The lease outlasts the
rounds that take it: no new wave starts once the lease could run out before the wave ends.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Final

from tenacity import wait_exponential_jitter

from media_worker.errors import MediaWorkerError
from media_worker.events.outbox import OutboxEntry, OutboxStore, Settled
from media_worker.events.target import DeliveryReport, EventTarget
from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics

LEASE_MARGIN_SECONDS: Final = 5.0
ROW_BACKOFF_MAX_SECONDS: Final = 300.0
TARGET_BACKOFF_MAX_SECONDS: Final = 60.0
ROW_BACKOFF = wait_exponential_jitter(initial=1, max=ROW_BACKOFF_MAX_SECONDS)
TARGET_BACKOFF = wait_exponential_jitter(initial=1, max=TARGET_BACKOFF_MAX_SECONDS)


@dataclass(frozen=True)
class DispatchSettings:
    """How a dispatcher works through its outbox rows."""

    max_age_seconds: float = 86_400.0  # older events are dropped undelivered
    batch: int = 100  # rows taken per round
    max_rounds: int = 10  # rounds per step, then the loop's interval


class Dispatcher:
    """Delivers the outbox rows of one target; `step` is one turn of its supervised loop."""

    def __init__(self, store: OutboxStore, target: EventTarget, *, settings: DispatchSettings,
                 logger: Logger, metrics: WorkerMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._target = target
        self._settings = settings
        self._log = logger.bind(target=target.name)
        self._metrics = metrics or WorkerMetrics()
        self._clock = clock
        self.lease_seconds = 3 * target.call_timeout_seconds + LEASE_MARGIN_SECONDS
        self._failures = 0  # waves in a row that failed entirely
        self._paused_until = 0.0
        self._stopping = False

    @property
    def name(self) -> str:
        return self._target.name

    def step(self) -> None:
        """Rounds until nothing is ready for this target (or `max_rounds`, or `stop()`); an
        unreachable database is logged and tried again next turn."""
        if not self._stopping:
            self.flush(until=None)

    def stop(self) -> None:
        """End the current step after its round (the rows it holds are settled first)."""
        self._stopping = True

    def flush(self, until: float | None) -> None:
        """Rounds until nothing is ready, `max_rounds` were done, or the clock passes `until`
        (the last words of a stopping worker)."""
        try:
            for _ in range(self._settings.max_rounds):
                if self._clock() < self._paused_until:
                    return
                if until is not None and self._clock() >= until:
                    return
                if not self.round(until) or (until is None and self._stopping):
                    return
        except MediaWorkerError as exc:
            self._log.warning("status events: outbox unreachable; trying again",
                              error=short_error(exc))

    def round(self, until: float | None = None) -> bool:
        """Take a batch and deliver it; True when a full batch went out (more may wait)."""
        started = self._clock()
        entries = self._store.lease(self._target.name, self._settings.batch,
                                    self.lease_seconds)
        if not entries:
            return False
        deadline = (started + self.lease_seconds - self._target.call_timeout_seconds
                    - LEASE_MARGIN_SECONDS)
        if until is not None:
            deadline = min(deadline, until)
        settled, healthy = self._deliver(entries, deadline)
        self._store.settle(settled)
        return healthy and len(settled.delivered) == len(entries) == self._settings.batch

    # --- one round -------------------------------------------------------------------------
    def _deliver(self, entries: Sequence[OutboxEntry], deadline: float) -> tuple[Settled, bool]:
        delivered = self._drop_expired(entries)
        queues: OrderedDict[str, deque[OutboxEntry]] = OrderedDict()
        for entry in entries:
            if entry.seq not in delivered:
                queues.setdefault(entry.media_id, deque()).append(entry)
        retry_after: dict[int, float] = {}
        untried: list[int] = []
        healthy = True
        while queues and self._clock() < deadline:
            wave = self._wave(queues)
            report = self._send(wave)
            for entry in wave:
                queue = queues.get(entry.media_id)
                if queue is None:  # an earlier event of its media failed in this wave
                    if entry.event_id in report.delivered:  # out already: nothing undoes it
                        delivered.add(entry.seq)
                    continue
                queue.popleft()
                if entry.event_id in report.delivered:
                    delivered.add(entry.seq)
                    if queue:
                        continue
                elif entry.event_id in report.failed:
                    retry_after[entry.seq] = _delay(ROW_BACKOFF, entry.attempts + 1)
                else:
                    untried.append(entry.seq)
                untried.extend(later.seq for later in queue  # this media waits its turn
                               if later.event_id not in report.delivered)
                del queues[entry.media_id]
            healthy = self._judge(wave, report, retry_after)
            if not healthy:
                break
        untried.extend(entry.seq for queue in queues.values() for entry in queue)
        return Settled(sorted(delivered), retry_after, untried), healthy

    def _wave(self, queues: OrderedDict[str, deque[OutboxEntry]]) -> list[OutboxEntry]:
        """The next call's events: the first undelivered event of up to `max_batch` media; or,
        for a target that keeps a batch's order within a media (FIFO queues and topics), the
        next `max_batch` events oldest first, several of one media among them."""
        size = self._target.max_batch
        if not getattr(self._target, "keeps_batch_order", False):
            return [queue[0] for queue in islice(queues.values(), size)]
        waiting = sorted((entry for queue in queues.values() for entry in queue),
                         key=lambda entry: entry.seq)
        return waiting[:size]

    def _send(self, wave: list[OutboxEntry]) -> DeliveryReport:
        try:
            return self._target.deliver(wave)
        except Exception as exc:  # a bug in a target: these events fail, the loop goes on
            self._log.exception("status event target raised", errorType=type(exc).__name__)
            reason = f"internal error: {short_error(exc, limit=200)}"
            return DeliveryReport(failed={entry.event_id: reason for entry in wave})

    def _judge(self, wave: list[OutboxEntry], report: DeliveryReport,
               retry_after: dict[int, float]) -> bool:
        """Count and log a wave; False (and the target paused) when it failed entirely."""
        name = self._target.name
        if report.delivered:
            self._metrics.events_delivered(name, len(report.delivered))
            if self._failures:
                self._log.info("status event target delivering again",
                               failedWaves=self._failures)
            self._failures = 0
        if not report.failed:
            return True
        self._metrics.event_delivery_failed(name, len(report.failed))
        failed = [entry for entry in wave if entry.event_id in report.failed]
        first = failed[0]
        if report.delivered:  # the target works; these events of theirs did not go through
            self._log.warning("status events not delivered; trying them again later",
                              count=len(failed), eventId=first.event_id,
                              mediaId=first.media_id, error=report.failed[first.event_id],
                              retryInSeconds=round(retry_after[first.seq], 1))
            return True
        self._failures += 1
        pause = _delay(TARGET_BACKOFF, self._failures)
        self._paused_until = self._clock() + pause
        self._log.warning("status event target failing; pausing it", count=len(failed),
                          error=report.failed[first.event_id], failedWaves=self._failures,
                          pauseSeconds=round(pause, 1), where=self._target.describe())
        return False

    def _drop_expired(self, entries: Sequence[OutboxEntry]) -> set[int]:
        """Seqs of events past EVENTS_MAX_AGE_SECONDS: dropped (deleted) undelivered."""
        now = datetime.now(UTC)
        expired = [e for e in entries
                   if (now - e.created_at).total_seconds() > self._settings.max_age_seconds]
        for entry in expired:
            log_dropped(self._log, entry, now)
        if expired:
            self._metrics.events_dropped(self._target.name, len(expired))
        return {entry.seq for entry in expired}


def log_dropped(log: Logger, entry: OutboxEntry, now: datetime) -> None:
    """The line every event dropped for its age leaves."""
    log.warning("status event dropped undelivered: older than EVENTS_MAX_AGE_SECONDS",
                target=entry.target, eventId=entry.event_id, mediaId=entry.media_id,
                type=entry.event_type, attempts=entry.attempts,
                ageSeconds=round((now - entry.created_at).total_seconds()))


@dataclass(frozen=True)
class _Attempt:
    """The one attribute tenacity's wait strategies read from a retry state."""

    attempt_number: int


def _delay(strategy: wait_exponential_jitter, attempt: int) -> float:
    return float(strategy(_Attempt(max(1, attempt))))  # type: ignore[arg-type]
