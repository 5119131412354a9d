"""Status events: worker CPU per job with events off and on (`python -m bench.events`, or
`python -m bench.run --only events`).

What a job costs the worker process for its status changes, measured with getrusage over all
of this process's threads: the repository's claim, lease extension and completion of each job
(the rows were inserted beforehand, as the API does), and with events on also the dispatcher
delivering the job's two events (media.processing, media.ready) on its supervised loop at the
default poll interval, until the outbox is empty. The webhook receiver, moto and LocalStack
(SQS, when installed: it keeps connections alive as AWS does, moto does not) run in processes
of their own and PostgreSQL is a server: their CPU is not the worker's. The row's
thumbnails and metadata are those of a three-size photo job. Jobs start `--rate` per second
(about what a worker on two cores finishes end to end, so the dispatcher's rounds see as many
events as in production, and its idle polls count too). Each case runs `--jobs` jobs, `--reps`
times, every case once per repetition (a busy moment of the machine then raises both sides of
a pair); the median per job is reported, and the events' share is the median of the
repetitions' differences from the same repository with everything off, against the issue's
budget of 1 ms per job.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import structlog
from botocore.credentials import Credentials
from psycopg import sql
from tests.servers import ServerUnavailable, find_localstack_python, localstack_server

from bench.botocore_sqs import BOTOCORE_CONFIG, BotocoreSqsTarget
from bench.common import POSTGRES_ADMIN_URL, Report, Row, Skip, Target, median, self_cpu
from media_worker.events.aws_batch import sqs_target
from media_worker.events.aws_signed import SignedPoster
from media_worker.events.dispatcher import Dispatcher, DispatchSettings
from media_worker.events.outbox import EventRecording, OutboxEntry, Settled
from media_worker.events.target import DeliveryReport, EventTarget
from media_worker.events.webhook_target import WebhookTarget
from media_worker.repository.port import MediaStore, NewMedia
from media_worker.repository.postgres import PostgresMediaRepository
from media_worker.repository.sqlite import SqliteMediaRepository
from media_worker.sqlite_files import open_sqlite
from media_worker.supervision import Supervision
from media_worker.types import ThumbnailData

BUDGET_MS = 1.0
POLL_SECONDS = 0.5  # EVENTS_POLL_INTERVAL_MS's default
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
THUMBNAILS = [ThumbnailData(size=name, width=side, height=side * 3 // 4, format="webp",
                            mime_type="image/webp", bucket="media",
                            key=f"thumbnails/{uuid.uuid4()}/{name}.webp", bytes=side * 40)
              for name, side in (("small", 150), ("medium", 480), ("large", 1280))]
METADATA: dict[str, Any] = {
    "kind": "image", "width": 4032, "height": 3024, "format": "jpeg", "orientation": 6,
    "bytes": 2_845_112, "hdr": False, "placeholder": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
    "thumbhash": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "dominantColor": "#6f7c84",
    "palette": ["#6f7c84", "#c8cdd0", "#3a4046", "#9aa5ab", "#e7e1d6"],
    "phash": "c3a1f0e0d0b09081", "takenAt": "2026-05-01T10:12:33+02:00",
    "camera": {"make": "Apple", "model": "iPhone 13 Pro Max", "lens": "back triple camera"},
    "exposure": {"iso": 50, "aperture": 1.5, "shutter": "1/1000", "focalLength": 5.7},
}
RECEIVER = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Node's and most API servers answer
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
class S(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
server = S(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class Case:
    name: str
    database: str  # postgres | sqlite
    recording: EventRecording
    target: str | None = None  # webhook | sqs-moto | sqs-localstack


CASES = (
    Case("PostgreSQL, events off", "postgres", EventRecording()),
    Case("PostgreSQL, NOTIFY (the default)", "postgres", EventRecording(channel="media_status")),
    Case("PostgreSQL, NOTIFY + webhook", "postgres",
         EventRecording(targets=("webhook",), channel="media_status"), "webhook"),
    Case("PostgreSQL, NOTIFY + SQS FIFO (moto)", "postgres",
         EventRecording(targets=("sqs",), channel="media_status"), "sqs-moto"),
    Case("PostgreSQL, NOTIFY + SQS FIFO (LocalStack)", "postgres",
         EventRecording(targets=("sqs",), channel="media_status"), "sqs-localstack"),
    Case("PostgreSQL, NOTIFY + SQS FIFO (LocalStack, botocore: before)", "postgres",
         EventRecording(targets=("sqs",), channel="media_status"), "sqs-localstack-botocore"),
    Case("SQLite, events off", "sqlite", EventRecording()),
    Case("SQLite, webhook", "sqlite", EventRecording(targets=("webhook",)), "webhook"),
)


# --- the destinations ----------------------------------------------------------------------
@dataclass
class Destinations:
    webhook_url: str
    sqs_endpoints: dict[str, str]  # server name (moto, localstack) → endpoint


@contextmanager
def destinations(workdir: Path) -> Iterator[Destinations]:
    """A webhook receiver, a moto server and (when installed) LocalStack, each a process.
    moto's server closes every connection, so each of its calls also pays a TCP connect;
    LocalStack keeps connections alive, as AWS does."""
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE,
                                text=True)
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    try:
        from bench.pipeline import services

        with services(workdir) as svc, ExitStack() as stack:
            endpoints = {"moto": svc.endpoint}
            with suppress(ServerUnavailable):
                find_localstack_python()
                (workdir / "localstack").mkdir(exist_ok=True)
                endpoints["localstack"] = stack.enter_context(
                    localstack_server(workdir / "localstack"))
            yield Destinations(f"http://127.0.0.1:{port}/hooks", endpoints)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def build_target(kind: str, where: Destinations) -> EventTarget:
    if kind == "webhook":
        return WebhookTarget(where.webhook_url, SECRET, timeout_seconds=10)
    server, _, transport = kind.removeprefix("sqs-").partition("-")
    endpoint = where.sqs_endpoints[server]
    sqs = boto3.client("sqs", endpoint_url=endpoint, config=BOTOCORE_CONFIG,
                       aws_access_key_id="test", aws_secret_access_key="test")
    url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    if transport == "botocore":
        return BotocoreSqsTarget(url, sqs)
    sqs.close()
    return sqs_target(url, SignedPoster(endpoint, service="sqs", region="us-east-1",
                                        credentials=Credentials("test", "test")))


# --- one measurement -----------------------------------------------------------------------
@contextmanager
def repository(case: Case, workdir: Path) -> Iterator[MediaStore]:
    if case.database == "sqlite":
        path = workdir / f"events-{uuid.uuid4().hex[:8]}.db"
        repo: MediaStore = SqliteMediaRepository(path, events=case.recording)
        repo.migrate()
        # One connection held open for the whole case, events on or off: the repository opens
        # a connection per call, and the last one to close a WAL database checkpoints it. The
        # outbox's kept connections would spare the events-on case those checkpoints and make
        # it look cheaper than events off; with this one, neither pays them.
        with closing(open_sqlite(path)) as held:
            held.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file
            yield repo
        return
    name = f"mw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    repo = PostgresMediaRepository(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
                                   events=case.recording, pool_max=4)
    try:
        repo.migrate()
        yield repo
    finally:
        repo.close()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def cpu_per_job(case: Case, jobs: int, workdir: Path, where: Destinations, *,
                rate: float) -> float:
    """CPU seconds of this process per job: its status changes, and their delivery; the jobs
    start `rate` per second (0: one after the other at once)."""
    with repository(case, workdir) as repo:
        ids = [str(uuid.uuid4()) for _ in range(jobs)]
        for media_id in ids:
            repo.insert(NewMedia(id=media_id, bucket="media", key=f"uploads/{media_id}.jpg"))
        for media_id in ids[:5]:  # warm the pool and the prepared statements
            run_job(repo, media_id)
        measured = jobs - 5
        delivered, stop = _start_dispatcher(repo, case, where, events=2 * measured)
        started = self_cpu()
        pace = Pace(rate)
        for media_id in ids[5:]:
            pace.wait()
            run_job(repo, media_id)
        if not delivered.wait(600):
            raise RuntimeError(f"{case.name}: the events were not all delivered")
        spent = self_cpu() - started
        stop()
        return spent / measured


class Pace:
    """Starts one job every 1/rate seconds (sleeping costs no CPU)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    def wait(self) -> None:
        if self._interval:
            time.sleep(max(0.0, self._next - time.monotonic()))
            self._next += self._interval


def run_job(repo: MediaStore, media_id: str) -> None:
    claim = repo.claim(media_id, 300, job_id=media_id)
    assert claim is not None
    assert repo.extend_lease(claim, 300)
    assert repo.complete(claim, THUMBNAILS, METADATA)


class Counting:
    """A target that sets `done` once `expected` events were delivered: the measurement then
    ends without a loop polling the outbox (whose CPU would count as the worker's)."""

    def __init__(self, target: EventTarget, expected: int) -> None:
        self._target = target
        self._left = expected
        self.done = threading.Event()
        self.name = target.name
        self.max_batch = target.max_batch
        # Forwarded as the dispatcher reads it: without it, a FIFO target's batch would carry
        # one event per media, as it never does in the worker.
        self.keeps_batch_order = getattr(target, "keeps_batch_order", False)
        self.call_timeout_seconds = target.call_timeout_seconds

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        report = self._target.deliver(events)
        self._left -= len(report.delivered)
        if self._left <= 0:
            self.done.set()
        return report

    def describe(self) -> str:
        return self._target.describe()

    def close(self) -> None:
        self._target.close()


def _start_dispatcher(repo: MediaStore, case: Case, where: Destinations, *,
                      events: int) -> tuple[threading.Event, Callable[[], None]]:
    """The dispatcher on its supervised loop, and the event set once `events` went out."""
    if case.target is None:
        nothing = threading.Event()
        nothing.set()
        return nothing, lambda: None
    target = Counting(build_target(case.target, where), events)
    outbox = repo.outbox()
    warm_up = outbox.follow(0, 1000)  # the warm-up jobs' events are not measured
    outbox.settle(Settled(delivered=[entry.seq for entry in warm_up]))
    log = structlog.get_logger("bench")
    dispatcher = Dispatcher(outbox, target, settings=DispatchSettings(), logger=log)
    loop = Supervision(log).loop("events", dispatcher.step, interval=POLL_SECONDS,
                                 run_first=True)
    loop.start()

    def stop() -> None:
        loop.stop()
        dispatcher.stop()
        loop.join(30)
        target.close()

    return target.done, stop


# --- the benchmark -------------------------------------------------------------------------
def events_bench(report: Report, workdir: Path, *, jobs: int, reps: int,
                 rate: float = 10.0) -> dict[str, float]:
    """Median CPU ms per job of every case; rows for the cases with events on."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        raise Skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: "
                   f"{str(exc).splitlines()[0] if str(exc) else exc}") from None
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with destinations(workdir) as where:
        cases = [case for case in CASES if not case.target or not case.target.startswith("sqs")
                 or case.target.split("-")[1] in where.sqs_endpoints]
        samples: dict[str, list[float]] = {case.name: [] for case in cases}
        for rep in range(reps):  # every case once per repetition: load changes hit them alike
            for case in cases:
                samples[case.name].append(cpu_per_job(case, jobs, workdir, where, rate=rate))
            print(f"  repetition {rep + 1}: " + ", ".join(
                f"{name} {values[-1] * 1000:.3f}" for name, values in samples.items()),
                flush=True)
    results = {name: median(values) * 1000 for name, values in samples.items()}
    for case in cases:
        if not case.recording.any:
            continue
        baseline = next(other.name for other in CASES
                        if other.database == case.database and not other.recording.any)
        # The median of each repetition's difference: a busy moment raises both of a pair.
        added = median(on - off for on, off in zip(samples[case.name], samples[baseline],
                                                   strict=True)) * 1000
        pace = f"{rate:g} jobs/s" if rate > 0 else "back to back"
        report.add(Row("events", f"{case.name}, {pace}: added CPU per job / 1 ms",
                       f"{results[case.name]:.3f} ms ({added:+.3f} ms)",
                       f"{results[baseline]:.3f} ms off", added / BUDGET_MS,
                       Target("<=", 1.0)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=65,
                        help="jobs per measurement, the first 5 not measured (65)")
    parser.add_argument("--reps", type=int, default=5, help="measurements per case (5)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="jobs started per second, about what a worker on two cores "
                             "finishes end to end (10); 0: back to back")
    args = parser.parse_args(argv)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="mw-bench-events-") as workdir:
        events_bench(report, Path(workdir), jobs=args.jobs, reps=args.reps, rate=args.rate)
    print(f"\n{report.table()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
