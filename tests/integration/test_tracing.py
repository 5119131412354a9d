"""Traces across the queue: the real `media-worker` exports its jobs' spans over OTLP/HTTP to a
receiver this test runs on 127.0.0.1, continuing the trace the producer put on the message.

One drain of the embedded deployment serves most tests (four jobs: traced by `traceparent`,
by `AWSTraceHeader` only, not traced, and a broken file); one over moto's SQS and PostgreSQL
checks SQS's side. The tests that tracing is off ask a fresh interpreter which modules the
worker loaded.
"""

from __future__ import annotations

import json
import mimetypes
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import boto3
import pytest

from media_worker.queue.port import AWS_TRACE_HEADER
from media_worker.repository.port import NewMedia
from media_worker.samples import make_samples
from media_worker.types import MediaStatus, WorkerQueueMessage
from tests.conftest import free_port
from tests.integration.deployments import BUCKET, Deployment, log_events
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
BROKEN_TRACE = "0af7651916cd43dd8448eb211c80319c"
XRAY_TRACE = "5759e988bd862e3fe1be46a994272793"
XRAY_PARENT = "53995c3f42cd8ad8"
XRAY_HEADER = f"Root=1-{XRAY_TRACE[:8]}-{XRAY_TRACE[8:]};Parent={XRAY_PARENT};Sampled=1"
STAGES = ["claim", "read", "download", "render", "upload", "finish"]
SIZES = ["small", "medium", "large"]
EMBEDDED = {"SQS_WAIT_TIME_SECONDS": "1", "SQS_POLL_INTERVAL_MS": "100", "LOG_FORMAT": "json",
            "MINIO_BUCKET": BUCKET}
NO_TRACING = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
              "OTEL_SDK_DISABLED": "", "OTEL_TRACES_EXPORTER": ""}


def traceparent(trace_id: str, span_id: str = PRODUCER_SPAN) -> str:
    return f"00-{trace_id}-{span_id}-01"


def tracing_to(receiver: OtlpReceiver) -> dict[str, str]:
    """The worker's OTEL_* variables: the receiver, and batches sent within 100 ms."""
    return NO_TRACING | {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                         "OTEL_BSP_SCHEDULE_DELAY": "100"}


def submit(deployment: Deployment, path: Path, attributes: dict[str, str]) -> str:
    """What the API does (store the original, insert the row, send the job), with the
    producer's trace context as message attributes; returns the media id."""
    media_id, body = store(deployment, path)
    with deployment.components() as components:
        components.queue.send(body, attributes=attributes)
    return media_id


def store(deployment: Deployment, path: Path) -> tuple[str, str]:
    """The original stored and its row inserted; its media id and job message body."""
    media_id = str(uuid.uuid4())
    key = f"uploads/{media_id}/{path.name}"
    mime_type = mimetypes.guess_type(path.name)[0]
    message = WorkerQueueMessage(job_id=f"job-{media_id}", media_id=media_id, bucket=BUCKET,
                                 key=key, mime_type=mime_type)
    with deployment.components() as components:
        components.storage.ensure_bucket(BUCKET)
        components.storage.upload_file(BUCKET, key, path, mime_type or "application/octet-stream")
        components.repository.insert(NewMedia(id=media_id, bucket=BUCKET, key=key,
                                              mime_type=mime_type, size=path.stat().st_size))
    return media_id, json.dumps(message.to_wire())


def job_span(spans: list[ReceivedSpan], media_id: str) -> ReceivedSpan:
    [found] = [s for s in spans if s.kind == "CONSUMER" and s.attributes.get("mediaId") == media_id]
    return found


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> dict[str, ReceivedSpan]:
    return {s.name: s for s in spans if s.parent_span_id == parent.span_id}


def jobs_exported(count: int) -> Callable[[list[ReceivedSpan]], bool]:
    return lambda spans: sum(s.kind == "CONSUMER" for s in spans) >= count


@dataclass
class TracedRun:
    """What one traced drain left: the spans received, the media ids by case, the logs."""

    spans: list[ReceivedSpan]
    media: dict[str, str]
    logs: list[dict[str, Any]]
    errors: dict[str, str | None]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {p.suffix.lstrip("."): p for p in make_samples(tmp_path_factory.mktemp("samples"))}
    broken = made["jpg"].with_name("broken.jpg")
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
    return made | {"broken": broken}


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory: pytest.TempPathFactory, samples: dict[str, Path]) -> TracedRun:
    with otlp_receiver() as receiver:
        deployment = Deployment("embedded", EMBEDDED | tracing_to(receiver),
                                tmp_path_factory.mktemp("traced"))
        media = {
            "traced": submit(deployment, samples["jpg"],
                             {"traceparent": traceparent(PRODUCER_TRACE), "tracestate": "a=1"}),
            "xray": submit(deployment, samples["png"], {AWS_TRACE_HEADER: XRAY_HEADER}),
            "untraced": submit(deployment, samples["gif"], {}),
            "broken": submit(deployment, samples["broken"],
                             {"traceparent": traceparent(BROKEN_TRACE)}),
        }
        result = deployment.drain()
        spans = receiver.wait_for(jobs_exported(len(media)))
        with deployment.components() as components:
            errors = {case: components.repository.get(media_id).error  # type: ignore[union-attr]
                      for case, media_id in media.items()}
    return TracedRun(spans, media, log_events(result.stderr), errors)


# --- the job's span -----------------------------------------------------------------------------
def test_the_job_span_continues_the_producers_trace_from_traceparent(
    traced_run: TracedRun,
) -> None:
    span = job_span(traced_run.spans, traced_run.media["traced"])

    assert (span.trace_id, span.parent_span_id, span.kind) == (
        PRODUCER_TRACE, PRODUCER_SPAN, "CONSUMER")


def test_the_job_span_carries_the_messaging_attributes_and_what_became_of_the_job(
    traced_run: TracedRun,
) -> None:
    media_id = traced_run.media["traced"]
    span = job_span(traced_run.spans, media_id)

    assert span.name == "process queue.db"
    assert span.attributes | {"messaging.message.id": "…"} == {
        "messaging.system": "sqlite", "messaging.operation.type": "process",
        "messaging.operation.name": "process", "messaging.operation": "process",
        "messaging.destination.name": "queue.db", "messaging.message.id": "…",
        "messaging.message.body.size": span.attributes["messaging.message.body.size"],
        "receiveCount": 1, "mediaId": media_id, "jobId": f"job-{media_id}", "kind": "image",
        "outcome": "ready", "attempt": 1}
    assert span.status == "UNSET"


def test_a_message_with_only_an_aws_trace_header_continues_its_xray_trace(
    traced_run: TracedRun,
) -> None:
    span = job_span(traced_run.spans, traced_run.media["xray"])

    assert (span.trace_id, span.parent_span_id) == (XRAY_TRACE, XRAY_PARENT)


def test_a_message_without_trace_context_starts_a_trace_of_its_own(
    traced_run: TracedRun,
) -> None:
    span = job_span(traced_run.spans, traced_run.media["untraced"])

    assert span.parent_span_id == ""
    assert span.trace_id not in {PRODUCER_TRACE, BROKEN_TRACE, XRAY_TRACE}


def test_the_service_names_itself_media_worker(traced_run: TracedRun) -> None:
    span = job_span(traced_run.spans, traced_run.media["traced"])

    assert span.resource["service.name"] == "media-worker"


# --- the stages -------------------------------------------------------------------------------
def test_each_stage_is_a_child_span_with_the_jobs_ids_and_its_outcome(
    traced_run: TracedRun,
) -> None:
    media_id = traced_run.media["traced"]
    stages = children(traced_run.spans, job_span(traced_run.spans, media_id))

    assert list(stages) == STAGES
    for span in stages.values():
        assert (span.attributes["mediaId"], span.attributes["jobId"],
                span.attributes["outcome"], span.trace_id) == (
            media_id, f"job-{media_id}", "ok", PRODUCER_TRACE), span.name
    assert stages["download"].attributes["bytes"] > 0
    assert stages["upload"].attributes["bytes"] > 0
    assert {stages[name].attributes["kind"] for name in ("render", "upload", "finish")} == {
        "image"}


def test_the_render_has_a_decode_then_an_encode_per_size_with_its_bytes(
    traced_run: TracedRun,
) -> None:
    job = job_span(traced_run.spans, traced_run.media["traced"])
    render = children(traced_run.spans, job)["render"]
    steps = children(traced_run.spans, render)

    assert list(steps) == ["decode", *(f"encode {size}" for size in SIZES)]
    assert [steps[f"encode {size}"].attributes["size"] for size in SIZES] == SIZES
    assert all(steps[f"encode {size}"].attributes["bytes"] > 0 for size in SIZES)
    assert sum(steps[f"encode {size}"].attributes["bytes"] for size in SIZES) == (
        children(traced_run.spans, job)["upload"].attributes["bytes"])


def test_decode_and_encodes_timed_in_the_decoder_process_lie_within_the_render_span(
    traced_run: TracedRun,
) -> None:
    render = children(traced_run.spans, job_span(traced_run.spans,
                                                 traced_run.media["traced"]))["render"]
    steps = list(children(traced_run.spans, render).values())

    assert render.start_ns <= steps[0].start_ns
    assert steps[-1].end_ns <= render.end_ns
    assert all(a.end_ns <= b.start_ns for a, b in pairwise(steps))


# --- failures and logs --------------------------------------------------------------------------
def test_a_failed_job_span_has_status_error_with_the_rows_readable_error(
    traced_run: TracedRun,
) -> None:
    span = job_span(traced_run.spans, traced_run.media["broken"])
    error = traced_run.errors["broken"]

    assert error
    assert (span.trace_id, span.status, span.status_message, span.attributes["outcome"]) == (
        BROKEN_TRACE, "ERROR", error, "failed")


def test_the_stage_that_raised_is_an_error_span_with_the_exception(
    traced_run: TracedRun,
) -> None:
    job = job_span(traced_run.spans, traced_run.media["broken"])
    render = children(traced_run.spans, job)["render"]

    assert (render.status, render.attributes["outcome"]) == ("ERROR", "error")
    [(name, attributes)] = render.events
    assert name == "exception"
    assert attributes["exception.type"] == "CorruptMediaError"
    assert attributes["exception.message"] in traced_run.errors["broken"]  # type: ignore[operator]
    assert "upload" not in children(traced_run.spans, job)


def test_log_lines_of_a_job_carry_its_trace_id_and_span_id(traced_run: TracedRun) -> None:
    media_id = traced_run.media["traced"]
    span = job_span(traced_run.spans, media_id)
    lines = [event for event in traced_run.logs if event.get("mediaId") == media_id]

    assert lines
    assert {(event.get("traceId"), event.get("spanId")) for event in lines} == {
        (PRODUCER_TRACE, span.span_id)}


def test_log_lines_outside_a_job_carry_no_trace_id(traced_run: TracedRun) -> None:
    started = [event for event in traced_run.logs if event["event"] == "worker started"]

    assert started
    assert "traceId" not in started[0]


@pytest.fixture(scope="module")
def unreachable_run(tmp_path_factory: pytest.TempPathFactory,
                    samples: dict[str, Path]) -> tuple[MediaStatus, str]:
    """A drain whose collector is out of reach (nothing listens on its port); the exporter
    gives up after a second. The job's status and the worker's standard error."""
    nobody = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
              "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
    deployment = Deployment("embedded", EMBEDDED | NO_TRACING | nobody,
                            tmp_path_factory.mktemp("unreachable"))
    media_id = submit(deployment, samples["png"], {"traceparent": traceparent(PRODUCER_TRACE)})
    result = deployment.drain()
    with deployment.components() as components:
        status = components.repository.get(media_id).status  # type: ignore[union-attr]
    return status, result.stderr


def test_an_unreachable_collector_fails_no_job(unreachable_run: tuple[MediaStatus, str]) -> None:
    assert unreachable_run[0] is MediaStatus.READY


def test_the_sdks_complaints_are_json_log_lines_of_the_worker(
    unreachable_run: tuple[MediaStatus, str],
) -> None:
    stderr = unreachable_run[1]
    complaints = [event for event in log_events(stderr)
                  if str(event.get("logger", "")).startswith("opentelemetry")]

    assert complaints
    assert all(event["event"].startswith("tracing: ") for event in complaints)
    assert all(line.startswith("{") for line in stderr.splitlines() if line.strip())


# --- over SQS -----------------------------------------------------------------------------------
@pytest.mark.services
def test_over_sqs_a_job_continues_the_trace_of_traceparent_or_of_the_aws_trace_header(
    services_deployment: Deployment, samples: dict[str, Path],
) -> None:
    """Sent as the API does with the AWS SDK: `traceparent` a String message attribute,
    `AWSTraceHeader` a message system attribute."""
    with otlp_receiver() as receiver:
        deployment = services_deployment
        deployment.env |= tracing_to(receiver)
        (_, w3c_body), (_, xray_body) = (store(deployment, samples["jpg"]),
                                         store(deployment, samples["png"]))
        sqs = boto3.client("sqs", endpoint_url=deployment.env["SQS_ENDPOINT"],
                           region_name="us-east-1")
        queue_url = deployment.env["SQS_QUEUE_URL"]
        by_w3c = sqs.send_message(QueueUrl=queue_url, MessageBody=w3c_body, MessageAttributes={
            "traceparent": {"DataType": "String",
                            "StringValue": traceparent(PRODUCER_TRACE)}})["MessageId"]
        by_xray = sqs.send_message(
            QueueUrl=queue_url, MessageBody=xray_body, MessageSystemAttributes={
                AWS_TRACE_HEADER: {"DataType": "String", "StringValue": XRAY_HEADER}},
        )["MessageId"]
        sqs.close()
        deployment.drain()
        spans = receiver.wait_for(jobs_exported(2))
    by_message = {s.attributes["messaging.message.id"]: s for s in spans if s.kind == "CONSUMER"}

    assert (by_message[by_w3c].trace_id, by_message[by_w3c].parent_span_id) == (
        PRODUCER_TRACE, PRODUCER_SPAN)
    assert (by_message[by_xray].trace_id, by_message[by_xray].parent_span_id) == (
        XRAY_TRACE, XRAY_PARENT)
    assert {(s.attributes["messaging.system"], s.attributes["messaging.destination.name"])
            for s in by_message.values()} == {("aws_sqs", queue_url.rsplit("/", 1)[-1])}


# --- off ----------------------------------------------------------------------------------------
LOADED_MODULES = """
import json, sys
from media_worker.cli import main
sys.argv = ["media-worker", "run", "--drain"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def drain_in_fresh_interpreter(deployment: Deployment, samples: dict[str, Path]) -> list[str]:
    """Drain one job in a new interpreter; the OpenTelemetry modules it had loaded by then."""
    media_id = submit(deployment, samples["png"], {"traceparent": traceparent(PRODUCER_TRACE)})
    out = subprocess.run([sys.executable, "-c", LOADED_MODULES],
                         env=deployment._process_env(), cwd=deployment.workdir,
                         capture_output=True, text=True, timeout=120, check=True)
    with deployment.components() as components:
        assert components.repository.get(media_id).status is MediaStatus.READY  # type: ignore[union-attr]
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("switch", [
    pytest.param({}, id="no endpoint"),
    pytest.param({"OTEL_SDK_DISABLED": "true"}, id="endpoint but OTEL_SDK_DISABLED"),
])
def test_without_tracing_no_opentelemetry_module_is_loaded_and_nothing_is_sent(
    switch: dict[str, str], receiver: OtlpReceiver, samples: dict[str, Path], tmp_path: Path,
) -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint} if switch else {}
    deployment = Deployment("embedded", EMBEDDED | NO_TRACING | endpoint | switch, tmp_path)

    loaded = drain_in_fresh_interpreter(deployment, samples)

    assert loaded == []
    assert receiver.requests == 0


def test_with_an_endpoint_the_sdk_is_loaded_which_the_off_tests_rely_on(
    receiver: OtlpReceiver, samples: dict[str, Path], tmp_path: Path,
) -> None:
    deployment = Deployment("embedded", EMBEDDED | tracing_to(receiver), tmp_path)

    loaded = drain_in_fresh_interpreter(deployment, samples)

    assert "opentelemetry.sdk.trace" in loaded
    assert receiver.requests >= 1
