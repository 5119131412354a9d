"""Worker CPU that tracing adds to a job: `.venv/bin/python -m bench.tracing_overhead [JOBS]`.

Runs the processor's tracing calls for one job (the job span, its five stages, a decode and
three encodes from a render's timings, and the ending) many times, with the no-op tracer and
with the OpenTelemetry one exporting over OTLP/HTTP to a sink in another process (which answers
as a collector does without decoding, so the export is never held up), and prints the CPU
per job of this process: the job threads' calls and the SDK's export thread (batching,
protobuf encoding, HTTP) together.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from media_worker.engines.port import RenderedThumbnail, RenderResult
from media_worker.engines.render_clock import DECODE, ENCODE, RenderTiming
from media_worker.jobs import InFlightJob
from media_worker.observability.tracing import NO_TRACER, Tracer
from media_worker.queue.port import ReceivedMessage
from media_worker.types import ThumbnailSize, WorkerQueueMessage

SIZES = ("small", "medium", "large")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)  # an empty ExportTraceServiceResponse is zero bytes
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    ready.put(f"http://127.0.0.1:{server.server_address[1]}")
    server.serve_forever()


def _result() -> RenderResult:
    now = time.time_ns()
    thumbnails = [RenderedThumbnail(ThumbnailSize(name=name, width=64, height=64), 64, 64,
                                    "webp", "image/webp", b"x" * 2000) for name in SIZES]
    timings = (RenderTiming(DECODE, now, now + 1000),
               *(RenderTiming(ENCODE, now + 1000 * i, now + 1000 * (i + 1), name)
                 for i, name in enumerate(SIZES, start=1)))
    return RenderResult(thumbnails, {"kind": "image"}, timings)


def one_job(tracer: Tracer, number: int, result: RenderResult) -> None:
    """What MediaProcessor asks of the tracer for a job that becomes READY."""
    job = InFlightJob(ReceivedMessage(f"m{number}", "r", '{"mediaId": "x"}', 1,
                                      attributes={"traceparent": TRACEPARENT}))
    job.request = WorkerQueueMessage(media_id=f"media-{number}", job_id=f"job-{number}")
    with tracer.job(job) as trace:
        with job.timed("claim"):
            pass
        with job.timed("download") as stage:
            stage.note(bytes=123_456)
        with job.timed("render") as stage:
            stage.rendered(result)
        job.kind = "image"
        with job.timed("upload") as stage:
            stage.note(bytes=6000)
        with job.timed("finish"):
            pass
        trace.ended("ready")


def cpu_per_job(tracer: Tracer, jobs: int) -> float:
    """Microseconds of this process's CPU per job, export included (flushed at the end)."""
    result = _result()
    started = time.process_time()
    for number in range(jobs):
        one_job(tracer, number, result)
    tracer.close()
    return (time.process_time() - started) / jobs * 1e6


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    server = context.Process(target=_serve, args=(ready,), daemon=True)
    server.start()
    try:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = ready.get(timeout=30)
        # Jobs here come far faster than a worker's: a queue that holds them all, so every
        # span is exported (and counted) rather than dropped.
        os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", str(20 * jobs))
        from media_worker.observability.tracing import build_tracer

        off = cpu_per_job(NO_TRACER, jobs)
        on = cpu_per_job(build_tracer(system="aws_sqs", destination="bench"), jobs)
    finally:
        server.terminate()
        server.join(timeout=5)
    print(f"tracing CPU per job over {jobs} jobs: off {off:.1f} µs, on {on:.1f} µs "
          f"(10 spans a job, OTLP/HTTP export included)")


if __name__ == "__main__":
    main()
