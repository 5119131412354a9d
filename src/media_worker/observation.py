"""What one delivery reports besides its outcome: the in-flight gauge and the job's span around
its handling (the tracing port, observability/tracing.py), then its latency, its stages and
retries in the metrics. The processor tells the story of a job; this watches it being told.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from media_worker.jobs import InFlightJob
from media_worker.observability.metrics import WorkerMetrics
from media_worker.observability.tracing import Tracer
from media_worker.outcomes import METRIC_OUTCOMES, Outcome


def observed(job: InFlightJob, handle: Callable[[], Outcome], *, tracer: Tracer,
             metrics: WorkerMetrics) -> Outcome:
    """`handle()`'s outcome for `job` (which must not raise), inside the in-flight gauge and
    the job's span (ended with the outcome), then counted in the metrics."""
    started = time.monotonic()
    # Received ahead (WORKER_PREFETCH), a message may wait for a free slot; its latency
    # (`seconds`) counts from the receive, and this stage says how much of it was waiting.
    job.stages["queued"] = started - job.started
    job.handling_since = started
    with metrics.tracking_in_flight(), tracer.job(job) as trace:
        outcome = handle()
        trace.ended(outcome.value)
    _record(metrics, job, outcome, time.monotonic() - started)
    return outcome


def _record(metrics: WorkerMetrics, job: InFlightJob, outcome: Outcome, seconds: float) -> None:
    metrics.job_finished(METRIC_OUTCOMES[outcome], job.kind, seconds)
    for stage, stage_seconds in job.stages.items():
        metrics.stage_finished(stage, job.kind, stage_seconds)
    if outcome in (Outcome.RETRY, Outcome.DEFERRED):
        metrics.retry()
