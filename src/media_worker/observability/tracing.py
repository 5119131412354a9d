"""Traces of jobs across the queue: what the processor asks of a tracer, and the tracer that
does nothing.

Tracing is on when the standard OTLP variables name an endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Only then does `build_tracer` import the OpenTelemetry SDK
(otel_tracing.py), which reads every other OTEL_* variable itself. Otherwise the worker gets
NO_TRACER: no OpenTelemetry module is loaded, and a job pays a few no-op calls.

The processor sees three calls: `Tracer.job` around a delivery (the job's span, which the
producer's trace continues into), `InFlightJob.timed` around each stage (a child span; see
jobs.py) and `JobTrace.failed`/`ended` for what became of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from types import TracebackType

    from media_worker.engines.port import RenderResult
    from media_worker.jobs import InFlightJob

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class StageTrace(Protocol):
    """The span of one stage (claim, download, render, upload, finish)."""

    def note(self, **attributes: str | int) -> None:
        """Add attributes to the stage's span (`bytes` of a download or an upload)."""
        ...

    def rendered(self, result: RenderResult) -> None:
        """Record the render's decode and encodes (measured where it ran) under this span."""
        ...


class JobTrace(Protocol):
    """The span of one delivery, from its handling to its last word on the queue."""

    def stage(self, name: str) -> AbstractContextManager[StageTrace]:
        """A child span around the block; an exception leaving it marks it as an error."""
        ...

    def failed(self, error: str) -> None:
        """The job failed (for now or for good) with this readable error."""
        ...

    def ended(self, outcome: str) -> None:
        """What became of the delivery (an Outcome value)."""
        ...


class Tracer(Protocol):
    """Makes the span of each job; `close` sends what is still buffered."""

    def job(self, job: InFlightJob) -> AbstractContextManager[JobTrace]:
        """The job's span around the block, continuing the producer's trace when its
        message carries one; log lines inside carry its traceId and spanId."""
        ...

    def close(self) -> None:
        ...


class _NoTrace:
    """Every trace role at once, doing nothing: the job, its stages, the tracer."""

    def __enter__(self) -> _NoTrace:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        return None

    def job(self, job: InFlightJob) -> _NoTrace:
        return self

    def stage(self, name: str) -> _NoTrace:
        return self

    def note(self, **attributes: str | int) -> None:
        pass

    def rendered(self, result: RenderResult) -> None:
        pass

    def failed(self, error: str) -> None:
        pass

    def ended(self, outcome: str) -> None:
        pass

    def close(self) -> None:
        pass


NO_TRACE = _NoTrace()
NO_TRACER: Tracer = NO_TRACE


def traces_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP endpoint traces go to (the traces-specific variable first), or None when
    tracing is off: no endpoint, OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    for name in ENDPOINT_VARIABLES:
        if value := environ.get(name, "").strip():
            return value
    return None


def build_tracer(*, system: str, destination: str,
                 environ: Mapping[str, str] = os.environ) -> Tracer:
    """The OpenTelemetry tracer when configured, else NO_TRACER. `system` and `destination`
    name the queue on every job span (`aws_sqs` and the queue's name, for instance)."""
    if traces_endpoint(environ) is None:
        return NO_TRACER
    from media_worker.observability.otel_tracing import OtelTracer

    return OtelTracer.from_environment(system=system, destination=destination)
