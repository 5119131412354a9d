"""What every fault scenario uses: proxied services, a fleet of real workers, the final verdict.

The workers see S3, SQS and PostgreSQL only through TcpProxy instances the test controls; the
test itself (acting as the API and as the observer) talks to the same services directly, so it
can submit work and look at rows, objects and queues while a proxy is cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from PIL import Image, ImageDraw

from media_worker.app import Components
from media_worker.queue.port import QueueDepth
from media_worker.types import MediaRecord, MediaStatus
from tests.faults.proxy import TcpProxy
from tests.integration.deployments import Deployment, log_events

# Short timings so that leases, visibility timeouts and back-offs pass within a test.
# MAX_ATTEMPTS is high enough that an outage never exhausts a row's attempts.
FAULT_TIMINGS = {
    "SQS_VISIBILITY_TIMEOUT": "5",  # also the row's lease
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_POLL_INTERVAL_MS": "300",
    "SHUTDOWN_GRACE_SECONDS": "3",  # tests of shutdown set their own
    "MAX_ATTEMPTS": "10",
    "WORKER_CONCURRENCY": "2",
    "THUMBNAIL_SIZES": "small:96x96,medium:240x240,large:480x480",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "info",
}
VISIBILITY_TIMEOUT = int(FAULT_TIMINGS["SQS_VISIBILITY_TIMEOUT"])
SIZE_NAMES = ("small", "medium", "large")
FINAL = (MediaStatus.READY, MediaStatus.FAILED)


# --- waiting --------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str,
               interval: float = 0.25) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def readiness(port: int) -> tuple[int, dict[str, str]]:
    """A worker's `/readyz`: the HTTP status and each check's result (`ok` or why not)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            return answer.status, json.load(answer)["checks"]
    except urllib.error.HTTPError as answer:
        return answer.code, json.load(answer)["checks"]


def wait_for_readiness(port: int, status: int, *, timeout: float) -> dict[str, str]:
    """Poll `/readyz` until it answers `status`; returns the checks of that answer."""
    def answered() -> dict[str, str] | None:
        code, checks = readiness(port)
        return checks if code == status else None

    return wait_until(answered, timeout=timeout, what=f"/readyz to answer {status}")


# --- media ----------------------------------------------------------------------------------
def make_images(directory: Path, count: int, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """`count` small, distinct JPEGs: a few hundred milliseconds of work each at most."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = Image.new("RGB", size, ((37 * index) % 256, (91 * index) % 256, 160))
        draw = ImageDraw.Draw(image)
        for ring in range(6):
            inset = 20 + ring * 30 + index % 17
            draw.ellipse((inset, inset // 2, size[0] - inset, size[1] - inset // 2),
                         outline=(255 - ring * 30, index % 256, ring * 40), width=8)
        path = directory / f"image-{index:04d}.jpg"
        image.save(path, quality=85)
        paths.append(path)
    return paths


def make_corrupt_jpeg(path: Path) -> Path:
    """A JPEG header followed by garbage: a permanent failure, FAILED with a reason."""
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    return path


def make_noisy_png(path: Path, side: int) -> Path:
    """A PNG that does not compress (random pixels): its size sets how long a throttled
    download lasts (about 3 × side² bytes)."""
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path)
    return path


# --- services -------------------------------------------------------------------------------
def through(url: str, proxy: TcpProxy) -> str:
    """`url` with its host:port replaced by the proxy's (user and password kept)."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{proxy.address}" if userinfo else proxy.address
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Services:
    """moto S3 + SQS (with a dead-letter queue) and PostgreSQL, each behind a proxy.

    `deployment` is what the workers run with (every service through its proxy); `direct` is
    the same set-up without proxies, which the test uses as the API and as the observer
    through `view`."""

    deployment: Deployment
    direct: Deployment
    view: Components
    s3: TcpProxy
    sqs: TcpProxy
    database: TcpProxy

    @property
    def bucket(self) -> str:
        return self.direct.env["MINIO_BUCKET"]

    @property
    def proxies(self) -> tuple[TcpProxy, ...]:
        return (self.s3, self.sqs, self.database)

    def heal(self) -> None:
        """Every proxy forwarding again at full speed."""
        for proxy in self.proxies:
            proxy.restore()
            proxy.throttle(None)

    # --- acting as the API ------------------------------------------------------------
    def enqueue(self, *files: Path) -> list[str]:
        """Store each file, insert its PENDING row, send its job (`media-worker enqueue`)."""
        return self.direct.enqueue(*files)

    def send(self, body: str) -> str:
        return self.view.queue.send(body)

    def duplicate_every_job(self, count: int, timeout: float = 30) -> None:
        """Take the `count` job messages off the queue and send each body back twice in a
        row, as an at-least-once queue may deliver them (both copies then tend to arrive in
        the same receive, on different threads or workers)."""
        bodies: list[str] = []
        deadline = time.monotonic() + timeout
        while len(bodies) < count:
            assert time.monotonic() < deadline, f"only {len(bodies)} of {count} jobs received"
            for message in self.view.queue.receive(10, 1):
                bodies.append(message.body)
                self.view.queue.delete(message)
        for body in bodies:
            self.send(body)
            self.send(body)

    # --- observing --------------------------------------------------------------------
    def row(self, media_id: str) -> MediaRecord:
        record = self.view.repository.get(media_id)
        assert record is not None, f"no row {media_id}"
        return record

    def rows(self, ids: list[str]) -> list[MediaRecord]:
        return [self.row(media_id) for media_id in ids]

    def counts(self) -> Counter[MediaStatus]:
        return Counter(self.view.repository.count_by_status())

    def depth(self) -> QueueDepth:
        return self.view.queue.depth()

    def dead_letters(self) -> list[tuple[str, str, str]]:
        return self.view.queue.dead_letters()

    def thumbnail_keys(self) -> set[str]:
        return set(self.view.storage.list_keys(self.bucket, "thumbnails/"))

    def thumbnail_bytes(self, media_id: str) -> dict[str, bytes]:
        return {key: self.view.storage.read(self.bucket, key)
                for key in sorted(self.thumbnail_keys()) if f"/{media_id}/" in key}

    def keep_every_upload(self) -> None:
        """Turn on bucket versioning, so every PUT of a thumbnail leaves a version to count."""
        self._s3_client().put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def uploads_per_key(self, prefix: str = "thumbnails/") -> Counter[str]:
        """How many times each object was written (needs keep_every_upload() first)."""
        pages = self._s3_client().get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return Counter(v["Key"] for page in pages for v in page.get("Versions", ()))

    def _s3_client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.direct.env["MINIO_ENDPOINT"],
                            region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")

    def is_settled(self, submitted: int) -> bool:
        """Every row finished and nothing left in the main queue, visible or in flight."""
        counts = self.counts()
        if sum(counts[status] for status in FINAL) < submitted:
            return False
        depth = self.depth()
        return (depth.visible, depth.in_flight, depth.delayed) == (0, 0, 0)


def expected_keys(ids: list[str]) -> set[str]:
    return {f"thumbnails/{media_id}/{size}.webp" for media_id in ids for size in SIZE_NAMES}


# --- workers --------------------------------------------------------------------------------
@dataclass
class Worker:
    """One `media-worker run` process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    exit_code: int | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def events(self) -> list[dict[str, Any]]:
        """The JSON log events so far; a line cut short by SIGKILL is left out."""
        text = self.log.read_text(errors="replace")
        complete = text[: text.rfind("\n") + 1]
        return log_events(complete)

    def logged(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        try:
            self.exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code


@dataclass
class Fleet:
    """The worker processes of one scenario, started from one deployment."""

    deployment: Deployment
    log_dir: Path
    workers: list[Worker] = field(default_factory=list)

    def start(self, name: str | None = None, *, concurrency: int | None = None,
              env: dict[str, str] | None = None) -> Worker:
        """Start `media-worker run`; `env` adds or overrides variables for this one."""
        name = name or f"worker-{len(self.workers) + 1}"
        args = ["run"] if concurrency is None else ["run", "--concurrency", str(concurrency)]
        deployment = replace(self.deployment, env=self.deployment.env | (env or {}))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        worker = Worker(name, deployment.start(*args, log=log), log)
        self.workers.append(worker)
        return worker

    def start_many(self, count: int) -> list[Worker]:
        return [self.start() for _ in range(count)]

    def wait_started(self, *workers: Worker, timeout: float = 30) -> None:
        """Until each worker has logged `worker started` (its engine pool is up)."""
        for worker in workers:
            wait_until(lambda w=worker: w.logged("worker started") or not w.alive(),
                       timeout=timeout, what=f"{worker.name} to start")
            assert worker.alive(), f"{worker.name} exited early:\n{worker.log.read_text()}"

    def kill(self, worker: Worker) -> None:
        """SIGKILL: no handler runs, nothing is handed back."""
        worker.signal(signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_all(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM every live worker; returns each one's exit code (None: did not exit)."""
        running = [w for w in self.workers if w.alive()]
        for worker in running:
            worker.signal(signal.SIGCONT)
            worker.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes = {w.name: w.wait(max(0.1, deadline - time.monotonic())) for w in running}
        for worker in running:
            if worker.alive():
                worker.process.kill()
                worker.wait(10)
        return codes

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """Log events of every worker ever started, killed ones included."""
        every = [e for worker in self.workers for e in worker.events()]
        return every if event is None else [e for e in every if e.get("event") == event]

    def ready_counts(self) -> Counter[str]:
        """How many `ready` events each media got, across all workers."""
        return Counter(e["mediaId"] for e in self.events("ready"))


# --- the verdict ----------------------------------------------------------------------------
@dataclass
class Verdict:
    """What a scenario ends with; `line()` is what the closing note quotes."""

    scenario: str
    submitted: int
    ready: int
    failed: int
    duplicates: int
    stuck: int
    wall: float

    def line(self) -> str:
        return (f"SCENARIO {self.scenario}: submitted={self.submitted} ready={self.ready} "
                f"failed={self.failed} duplicates={self.duplicates} stuck={self.stuck} "
                f"wall={self.wall:.1f}s")


@dataclass
class Lab:
    """One scenario's services and workers, and the common end-state check."""

    services: Services
    fleet: Fleet
    started: float = field(default_factory=time.monotonic)

    def conclude(self, scenario: str, ids: list[str], *, bad: frozenset[str] = frozenset(),
                 timeout: float = 90) -> Verdict:
        """Wait for the system to settle, stop every worker with SIGTERM, print the summary
        line, then assert the end state every scenario promises:

        every row READY (FAILED with a reason only for the `bad` inputs), no row PROCESSING,
        exactly the expected thumbnails in the bucket, the main queue empty, every worker
        exited 0, and no media with more than one `ready` event."""
        with contextlib.suppress(AssertionError):
            wait_until(lambda: self.services.is_settled(len(ids)), timeout=timeout,
                       what="every row finished and the queue empty", interval=0.5)
        wall = time.monotonic() - self.started
        exit_codes = self.fleet.stop_all()
        records = self.services.rows(ids)
        ready_events = self.fleet.ready_counts()
        verdict = Verdict(
            scenario=scenario, submitted=len(ids),
            ready=sum(r.status is MediaStatus.READY for r in records),
            failed=sum(r.status is MediaStatus.FAILED for r in records),
            duplicates=sum(1 for count in ready_events.values() if count > 1),
            stuck=sum(r.status not in FINAL for r in records),
            wall=wall,
        )
        print(f"\n{verdict.line()}")

        for record in records:
            if record.id in bad:
                assert record.status is MediaStatus.FAILED, (record.id, record.status)
                assert record.error, f"{record.id} FAILED without a reason"
            else:
                assert record.status is MediaStatus.READY, (record.id, record.status,
                                                            record.error)
        assert self.services.thumbnail_keys() == expected_keys(
            [r.id for r in records if r.status is MediaStatus.READY])
        depth = self.services.depth()
        assert (depth.visible, depth.in_flight) == (0, 0), depth
        assert exit_codes == dict.fromkeys(exit_codes, 0), exit_codes
        assert verdict.duplicates == 0, {m: n for m, n in ready_events.items() if n > 1}
        return verdict


@contextlib.contextmanager
def outage(*proxies: TcpProxy, seconds: float) -> Iterator[None]:
    """Cut the proxies for `seconds` (the body runs meanwhile), then restore them."""
    ended = time.monotonic() + seconds
    for proxy in proxies:
        proxy.cut()
    try:
        yield
        time.sleep(max(0.0, ended - time.monotonic()))
    finally:
        for proxy in proxies:
            proxy.restore()
