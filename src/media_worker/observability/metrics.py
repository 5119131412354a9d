"""Prometheus metrics of one worker process.

`WorkerMetrics` owns its own `CollectorRegistry` instead of prometheus_client's process-wide
default: the composition root creates one per worker, and tests create many side by side
without "Duplicated timeseries" errors or counts leaking from one test into the next.

The methods take plain strings and numbers so the processor and poller never import
prometheus_client, and label values are normalised here (an unexpected media kind becomes
`unknown`) so a caller cannot blow up the number of series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from media_worker.queue.port import QueueDepth

PREFIX: Final = "media_worker_"

OUTCOMES: Final = (
    "ready", "failed_permanent", "failed_transient", "retry", "skipped", "awaiting_row", "held",
    "lost", "poison",
)
KINDS: Final = ("image", "video", "unknown")
BACKGROUND_LOOPS: Final = ("heartbeat", "reconciler", "queue-gauge")

# A whole job: a small image in well under a second, a long video near JOB_TIMEOUT_SECONDS.
JOB_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# A stage: claim and finish are single SQL statements (milliseconds), render can take minutes.
STAGE_BUCKETS: Final = (0.005, 0.01, 0.025, *JOB_BUCKETS)


@dataclass(frozen=True)
class Family:
    """One metric family: its kind, name (after PREFIX), help text, labels, buckets."""

    kind: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def register(self, registry: CollectorRegistry) -> MetricWrapperBase:
        extra = {"buckets": self.buckets} if self.buckets else {}
        return self.kind(f"{PREFIX}{self.name}", self.help, self.labels, registry=registry,
                         **extra)


# Every family the worker exports, in the order they are exposed; the methods below find them
# by name (without PREFIX), as dashboards and alerts do.
FAMILIES: Final = (
    # jobs
    Family(Counter, "jobs", "Deliveries handled, by outcome.", ("outcome",)),
    Family(Histogram, "job_duration_seconds", "Wall-clock time of one job, by media kind.",
           ("kind",), JOB_BUCKETS),
    Family(Histogram, "stage_duration_seconds", "Time spent in one stage of a job.",
           ("stage", "kind"), STAGE_BUCKETS),
    Family(Counter, "input_bytes", "Bytes of originals fetched (heads, ranges, downloads)."),
    Family(Counter, "output_bytes", "Bytes of thumbnails uploaded."),
    Family(Counter, "thumbnails", "Thumbnails stored, by size name.", ("size",)),
    Family(Gauge, "jobs_in_flight", "Jobs being processed right now."),
    Family(Counter, "retries", "Transient failures handed back to the queue for a later try."),
    Family(Counter, "engine_errors", "Rendering errors, by exception class.", ("error",)),
    Family(Counter, "background_failures",
           "Failed steps of a supervised background loop (heartbeat, reconciler, gauge).",
           ("thread",)),
    # the queue and dependencies
    Family(Gauge, "queue_messages", "Approximate messages in the queue, by state.",
           ("state",)),
    Family(Gauge, "queue_oldest_message_age_seconds",
           "Age of the oldest waiting job (NaN when unknown)."),
    Family(Gauge, "dependency_up", "1 when the last readiness check of a dependency passed.",
           ("dependency",)),
    # status events
    Family(Counter, "events_delivered", "Status events a target accepted.", ("target",)),
    Family(Counter, "event_delivery_failures",
           "Failed attempts to deliver a status event (it stays in the outbox for a retry).",
           ("target",)),
    Family(Counter, "events_dropped",
           "Status events dropped undelivered, older than EVENTS_MAX_AGE_SECONDS.",
           ("target",)),
    Family(Gauge, "outbox_events", "Status events waiting in the outbox, by target.",
           ("target",)),
    Family(Gauge, "outbox_oldest_event_age_seconds",
           "Age of the oldest status event waiting for a target (0 when none waits).",
           ("target",)),
)


class WorkerMetrics:
    """Every metric the worker exports, registered on a private registry."""

    def __init__(self, thumbnail_sizes: Iterable[str] = ()) -> None:
        """`thumbnail_sizes` pre-creates `thumbnails_total{size}` at 0 for the configured sizes,
        so `rate()` sees the first increment instead of a series appearing out of nowhere."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed = _WithoutCreated(self.registry)
        made = {family.name: family.register(self.registry) for family in FAMILIES}
        self._counters = {name: m for name, m in made.items() if isinstance(m, Counter)}
        self._gauges = {name: m for name, m in made.items() if isinstance(m, Gauge)}
        self._histograms = {name: m for name, m in made.items() if isinstance(m, Histogram)}
        self._gauges["queue_oldest_message_age_seconds"].set(math.nan)
        self._precreate(thumbnail_sizes)

    def _precreate(self, sizes: Iterable[str]) -> None:
        # Counters only: a gauge at 0 would claim "queue empty" or "database down" before
        # anyone has looked.
        for outcome in OUTCOMES:
            self._counters["jobs"].labels(outcome=outcome)
        for size in sizes:
            self._counters["thumbnails"].labels(size=size)
        for loop in BACKGROUND_LOOPS:
            self._counters["background_failures"].labels(thread=loop)

    # --- jobs ----------------------------------------------------------------------------
    def job_finished(self, outcome: str, kind: str | None, seconds: float) -> None:
        """Count one delivery by its outcome and time it under its media kind."""
        self._counters["jobs"].labels(outcome=str(outcome)).inc()
        self._histograms["job_duration_seconds"].labels(kind=_kind(kind)).observe(max(seconds, 0.0))

    def stage_finished(self, stage: str, kind: str | None, seconds: float) -> None:
        """Time one stage (claim, download, render, upload, finish) of a job."""
        stage_seconds = self._histograms["stage_duration_seconds"]
        stage_seconds.labels(stage=stage, kind=_kind(kind)).observe(max(seconds, 0.0))

    def add_input_bytes(self, n: int) -> None:
        """Bytes fetched of an original: its head, the ranges read in place, a download."""
        self._counters["input_bytes"].inc(max(n, 0))

    def add_output_bytes(self, n: int) -> None:
        """Bytes of a thumbnail that was uploaded."""
        self._counters["output_bytes"].inc(max(n, 0))

    def thumbnail_stored(self, size: str) -> None:
        """One thumbnail of the named size was uploaded."""
        self._counters["thumbnails"].labels(size=size).inc()

    def background_failure(self, loop: str) -> None:
        """A supervised background loop's step raised (it is retried after a backoff)."""
        self._counters["background_failures"].labels(thread=loop).inc()

    @contextmanager
    def tracking_in_flight(self) -> Iterator[None]:
        """Count a job as in flight for the duration of the block, even if it raises."""
        self._gauges["jobs_in_flight"].inc()
        try:
            yield
        finally:
            self._gauges["jobs_in_flight"].dec()

    def retry(self) -> None:
        """A transient failure sent the job back to the queue."""
        self._counters["retries"].inc()

    def engine_error(self, error: str | BaseException) -> None:
        """A render failed; labelled by exception class name (e.g. CorruptMediaError)."""
        name = error if isinstance(error, str) else type(error).__name__
        self._counters["engine_errors"].labels(error=name).inc()

    # --- status events -------------------------------------------------------------------
    def event_targets(self, targets: Iterable[str]) -> None:
        """Pre-create the event counters of the configured targets at 0."""
        for target in targets:
            for name in ("events_delivered", "event_delivery_failures", "events_dropped"):
                self._counters[name].labels(target=target)

    def events_delivered(self, target: str, count: int = 1) -> None:
        """`count` events the target accepted."""
        self._counters["events_delivered"].labels(target=target).inc(max(count, 0))

    def event_delivery_failed(self, target: str, count: int = 1) -> None:
        """`count` failed delivery attempts (the events wait for their next try)."""
        self._counters["event_delivery_failures"].labels(target=target).inc(max(count, 0))

    def events_dropped(self, target: str, count: int = 1) -> None:
        """`count` events dropped undelivered for their age."""
        self._counters["events_dropped"].labels(target=target).inc(max(count, 0))

    def observe_outbox(self, target: str, count: int, oldest_age_seconds: float | None) -> None:
        """Events waiting for `target`, and the age of the oldest (None: none waits)."""
        self._gauges["outbox_events"].labels(target=target).set(count)
        oldest = self._gauges["outbox_oldest_event_age_seconds"]
        oldest.labels(target=target).set(oldest_age_seconds or 0.0)

    # --- queue and dependencies ----------------------------------------------------------
    def set_queue_depth(
        self,
        visible: int,
        in_flight: int,
        delayed: int = 0,
        dead_letter: int | None = None,
        oldest_age_seconds: float | None = None,
    ) -> None:
        """Record the queue's approximate counts (as `QueueDepth` carries them).

        An unknown dead-letter count removes that series rather than reporting 0, and an
        unknown oldest age is NaN, so alerts never fire on a number nobody measured."""
        self._gauges["queue_messages"].labels(state="visible").set(visible)
        self._gauges["queue_messages"].labels(state="in_flight").set(in_flight)
        self._gauges["queue_messages"].labels(state="delayed").set(delayed)
        if dead_letter is None:
            self._forget_dead_letter()
        else:
            self._gauges["queue_messages"].labels(state="dead_letter").set(dead_letter)
        oldest = math.nan if oldest_age_seconds is None else oldest_age_seconds
        self._gauges["queue_oldest_message_age_seconds"].set(oldest)

    def observe_queue(self, depth: QueueDepth, oldest_age_seconds: float | None = None) -> None:
        """`set_queue_depth` from what `MessageQueue.depth()` returns."""
        self.set_queue_depth(depth.visible, depth.in_flight, depth.delayed, depth.dead_letter,
                             oldest_age_seconds)

    def _forget_dead_letter(self) -> None:
        with suppress(KeyError):  # never set yet
            self._gauges["queue_messages"].remove("dead_letter")

    def set_dependency(self, name: str, up: bool) -> None:
        """Record whether a dependency (queue, storage, database) answered its last check."""
        self._gauges["dependency_up"].labels(dependency=name).set(1 if up else 0)

    # --- exposition ----------------------------------------------------------------------
    @property
    def content_type(self) -> str:
        """Content type of `render()`: the classic text format every Prometheus parses."""
        return CONTENT_TYPE_PLAIN_0_0_4

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self._exposed)

    def render_for(self, accept: str | None) -> tuple[bytes, str]:
        """Body and content type negotiated from a scraper's Accept header (OpenMetrics when
        asked for, else the classic text format), as prometheus_client's own server does."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._exposed), content_type

    def metric_names(self) -> frozenset[str]:
        """Every sample name this registry can expose (`…_total`, `…_bucket`, …), for checking
        dashboards and docs against what the worker really serves."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                    "gauge": ("",)}
        return frozenset(
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        )


def _kind(kind: str | None) -> str:
    return kind if kind in KINDS else "unknown"


class _WithoutCreated:
    """The registry without its `…_created` samples.

    prometheus_client adds a creation-timestamp sample to every counter and histogram child;
    in the classic text format each becomes one more gauge series that no dashboard or alert
    here reads, doubling what Prometheus stores for this worker."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            trimmed = Metric(family.name, family.documentation, family.type, family.unit)
            trimmed.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield trimmed
