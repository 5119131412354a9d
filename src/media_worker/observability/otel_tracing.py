"""The tracer of tracing.py on the OpenTelemetry SDK, exporting over OTLP/HTTP.

Imported only when an OTLP endpoint is configured. The SDK reads the standard variables
itself: the endpoint, headers, timeout, compression and certificates (OTEL_EXPORTER_OTLP_*),
the batching (OTEL_BSP_*), the sampler (OTEL_TRACES_SAMPLER[_ARG]), the span limits and the
resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES); the worker only names itself
(`media-worker`, when OTEL_SERVICE_NAME does not) and its version.

Each job's span is a CONSUMER span named `process <queue>` with the messaging semantic
conventions' attributes. Its parent is the producer's span, from the message's `traceparent`
attribute (W3C Trace Context) or else SQS's `AWSTraceHeader` (X-Ray); without either it starts
a trace. The provider is the worker's own, never the process-wide global, so nothing else in
the process starts exporting through it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.aws.aws_xray_propagator import TRACE_HEADER_KEY, AwsXRayPropagator
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.contextvars import bound_contextvars

from media_worker.engines.render_clock import ENCODE
from media_worker.observability.logging import short_error
from media_worker.queue.port import AWS_TRACE_HEADER

if TYPE_CHECKING:
    from media_worker.engines.port import RenderResult
    from media_worker.jobs import InFlightJob

SERVICE = "media-worker"
# At shutdown, what is still buffered gets this long to reach the collector: an unreachable one
# must not hold a stopping worker for the exporter's whole retry budget.
CLOSE_TIMEOUT_SECONDS = 5.0
# Outcomes (outcomes.py) whose job span is an error: the job did not get done this time.
ERROR_OUTCOMES = frozenset({"failed", "gave_up", "retry", "deferred", "poison"})

_W3C = TraceContextTextMapPropagator()
_XRAY = AwsXRayPropagator()


def producer_context(attributes: Mapping[str, str]) -> Context:
    """The producer's span as the parent: W3C `traceparent` first, then `AWSTraceHeader`;
    an empty context (a new trace) when neither holds a valid one."""
    context = _W3C.extract(attributes)
    if _valid(context):
        return context
    header = attributes.get(AWS_TRACE_HEADER)
    if header:
        context = _XRAY.extract({TRACE_HEADER_KEY: header})
        if _valid(context):
            return context
    return Context()


def _valid(context: Context) -> bool:
    return trace.get_current_span(context).get_span_context().is_valid


def _resource() -> Resource:
    """The SDK's resource from the environment, named `media-worker` unless it says."""
    detected = Resource.create()
    own: dict[str, str] = {}
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        own[SERVICE_NAME] = SERVICE
    if SERVICE_VERSION not in detected.attributes:
        with suppress(PackageNotFoundError):
            own[SERVICE_VERSION] = version("media-worker")
    return detected.merge(Resource(own)) if own else detected


def _record_error(span: Span, error: str, kind: str | None = None) -> None:
    span.set_status(Status(StatusCode.ERROR, error))
    if kind is not None:
        span.add_event("exception", {"exception.type": kind, "exception.message": error})


class OtelTracer:
    """Spans of jobs, batched to an OTLP/HTTP endpoint."""

    def __init__(self, provider: TracerProvider, *, system: str, destination: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("media_worker", _resource_version(provider))
        self._system = system
        self._destination = destination

    @classmethod
    def from_environment(cls, *, system: str, destination: str) -> OtelTracer:
        _forward_sdk_logs()
        # Closed by `close`, within its bound, rather than by the SDK's unbounded atexit hook.
        provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, system=system, destination=destination)

    @contextmanager
    def job(self, job: InFlightJob) -> Iterator[OtelJobTrace]:
        message = job.message
        with self._tracer.start_as_current_span(
            f"process {self._destination}", context=producer_context(message.attributes),
            kind=SpanKind.CONSUMER, attributes={
                "messaging.system": self._system,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.operation": "process",  # the name before semantic conventions 1.26
                "messaging.destination.name": self._destination,
                "messaging.message.id": message.message_id,
                "messaging.message.body.size": len(message.body.encode()),
                "receiveCount": message.receive_count,
            }, record_exception=False, set_status_on_exception=False,
        ) as span:
            job_trace = OtelJobTrace(self._tracer, span, job)
            job.trace = job_trace
            ids = span.get_span_context()
            with bound_contextvars(traceId=format_trace_id(ids.trace_id),
                                   spanId=format_span_id(ids.span_id)):
                yield job_trace

    def close(self) -> None:
        """Send what is buffered and stop, waiting CLOSE_TIMEOUT_SECONDS at most (the SDK's
        flush has no bound of its own; its export thread is a daemon)."""
        closing = threading.Thread(target=self._provider.shutdown, name="otel-close",
                                   daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_SECONDS)


class _ToStructlog(logging.Handler):
    """The SDK's own warnings (a collector out of reach, a full span queue) as worker log
    lines, in the worker's format and redaction, instead of raw text amid the JSON."""

    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger("media_worker").bind(logger=record.name)
        method = getattr(log, record.levelname.lower(), log.warning)
        method(f"tracing: {record.getMessage()}")


def _forward_sdk_logs() -> None:
    sdk = logging.getLogger("opentelemetry")
    if not any(isinstance(handler, _ToStructlog) for handler in sdk.handlers):
        sdk.addHandler(_ToStructlog(logging.WARNING))
        sdk.propagate = False


def _resource_version(provider: TracerProvider) -> str | None:
    value = provider.resource.attributes.get(SERVICE_VERSION)
    return None if value is None else str(value)


class OtelJobTrace:
    """The span of one job, and the stage spans under it."""

    def __init__(self, tracer: trace.Tracer, span: Span, job: InFlightJob) -> None:
        self._tracer = tracer
        self._span = span
        self._job = job
        self._error: str | None = None

    def ids(self) -> dict[str, str | int]:
        """What every span of the job carries once known: mediaId, jobId, kind."""
        found: dict[str, str | int] = {}
        if self._job.request is not None:
            found["mediaId"] = self._job.request.media_id
            if self._job.request.job_id:
                found["jobId"] = self._job.request.job_id
        if self._job.kind is not None:
            found["kind"] = self._job.kind
        return found

    @contextmanager
    def stage(self, name: str) -> Iterator[OtelStage]:
        with self._tracer.start_as_current_span(name, attributes=self.ids(),
                                                record_exception=False,
                                                set_status_on_exception=False) as span:
            try:
                yield OtelStage(self, span)
            except BaseException as exc:
                span.set_attribute("outcome", "error")
                _record_error(span, short_error(exc), type(exc).__name__)
                raise
            span.set_attribute("outcome", "ok")

    def failed(self, error: str) -> None:
        self._error = error

    def ended(self, outcome: str) -> None:
        attributes: dict[str, str | int] = {**self.ids(), "outcome": outcome}
        if self._job.claim is not None:
            attributes["attempt"] = self._job.claim.attempt
        self._span.set_attributes(attributes)
        if outcome in ERROR_OUTCOMES or self._error is not None:
            _record_error(self._span, self._error or f"outcome {outcome}")

    def record_render(self, result: RenderResult) -> None:
        """Spans from the render's timings, children of the current (render) span."""
        kind = str(result.metadata.get("kind") or "unknown")
        self._span.set_attribute("kind", kind)
        for timing in result.timings:
            attributes = {**self.ids(), "kind": kind, "outcome": "ok"}
            name = timing.stage
            if timing.stage == ENCODE and timing.size is not None:
                name = f"{ENCODE} {timing.size}"
                attributes |= {"size": timing.size, "bytes": _encoded_bytes(result, timing.size)}
            span = self._tracer.start_span(name, start_time=timing.start_ns,
                                           attributes=attributes)
            span.end(end_time=timing.end_ns)


def _encoded_bytes(result: RenderResult, size: str) -> int:
    """Bytes of the renditions an encode made: the size of that name, else those of that
    kind (a storyboard's sheets and WebVTT file)."""
    named = [len(t.data) for t in result.thumbnails if t.size.name == size]
    return sum(named) if named else sum(len(t.data) for t in result.thumbnails
                                        if t.kind.startswith(size))


class OtelStage:
    """The span of one stage."""

    def __init__(self, job: OtelJobTrace, span: Span) -> None:
        self._job = job
        self._span = span

    def note(self, **attributes: str | int) -> None:
        self._span.set_attributes(attributes)

    def rendered(self, result: RenderResult) -> None:
        self._span.set_attribute("kind", str(result.metadata.get("kind") or "unknown"))
        self._job.record_render(result)
