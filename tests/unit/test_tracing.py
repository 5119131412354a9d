"""When tracing is on, and whose trace a job continues (the end-to-end behaviour is in
tests/integration/test_tracing.py)."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from media_worker.observability.otel_tracing import producer_context
from media_worker.observability.tracing import NO_TRACER, build_tracer, traces_endpoint
from media_worker.queue.port import AWS_TRACE_HEADER

ENDPOINT = "http://127.0.0.1:4318"
W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def parent_of(attributes: dict[str, str]) -> tuple[str, str, bool] | None:
    """The (trace id, span id, sampled) a job span would continue, or None for a new trace."""
    context = trace.get_current_span(producer_context(attributes)).get_span_context()
    if not context.is_valid:
        return None
    return (trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id),
            context.trace_flags.sampled)


@pytest.mark.parametrize(("environ", "endpoint"), [
    ({}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ENDPOINT),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, f"{ENDPOINT}/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318",
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, ENDPOINT),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, None),
    ({"OTEL_SERVICE_NAME": "thumbs"}, None),
])
def test_traces_go_to_the_traces_endpoint_else_the_otlp_endpoint_unless_switched_off(
    environ: dict[str, str], endpoint: str | None,
) -> None:
    assert traces_endpoint(environ) == endpoint


def test_without_an_endpoint_the_tracer_is_the_no_op_one() -> None:
    assert build_tracer(system="aws_sqs", destination="q", environ={}) is NO_TRACER


def test_a_w3c_traceparent_is_the_parent() -> None:
    assert parent_of({"traceparent": W3C}) == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)


def test_an_xray_trace_header_becomes_the_same_trace_in_w3c_form() -> None:
    assert parent_of({AWS_TRACE_HEADER: XRAY}) == (
        "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", True)


def test_traceparent_wins_over_the_aws_trace_header() -> None:
    assert parent_of({"traceparent": W3C, AWS_TRACE_HEADER: XRAY})[0] == (  # type: ignore[index]
        "4bf92f3577b34da6a3ce929d0e0e4736")


def test_an_invalid_traceparent_falls_back_on_the_aws_trace_header() -> None:
    assert parent_of({"traceparent": "00-nonsense-01", AWS_TRACE_HEADER: XRAY})[0] == (  # type: ignore[index]
        "5759e988bd862e3fe1be46a994272793")


def test_an_unsampled_xray_header_keeps_the_producers_decision() -> None:
    assert parent_of({AWS_TRACE_HEADER: XRAY.replace("Sampled=1", "Sampled=0")}) == (
        "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", False)


@pytest.mark.parametrize("attributes", [
    {}, {"traceparent": "garbage"}, {AWS_TRACE_HEADER: "Root=garbage"}, {"other": W3C},
])
def test_a_message_without_a_usable_context_starts_a_new_trace(
    attributes: dict[str, str],
) -> None:
    assert parent_of(attributes) is None
