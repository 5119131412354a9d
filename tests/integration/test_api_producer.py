"""The worker against a producer like the real API: Node, Prisma 7 and the AWS SDK for JS.

tests/api/producer.mjs stores originals under keys with spaces and non-ASCII letters, inserts
the rows through the Prisma Client of deploy/prisma/media.prisma and sends the jobs with
SendMessage (message attributes) and SendMessageBatch; one job goes out inside the transaction
that inserts its row, which commits only after the worker has received the job. The table is
what Prisma's migration creates (tests/api/fixtures/prisma-migration.sql); the worker never
runs `migrate` here. The database's time zone is not UTC, as an API's may well be. The worker
runs as `media-worker run --drain`; the producer then reads every row back through Prisma and
updates each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import psycopg
import pytest
from psycopg import sql

from media_worker.samples import make_samples
from tests.conftest import REPO_ROOT
from tests.integration.deployments import Deployment, log_events

pytestmark = pytest.mark.services

API = REPO_ROOT / "tests" / "api"
PRISMA_SQL = API / "fixtures" / "prisma-migration.sql"
SIZES = {"small", "medium", "large"}
DATABASE_TIME_ZONE = "Asia/Tokyo"  # UTC+9 all year: a timestamp written in local time shows
FRESH = timedelta(seconds=120)  # "now" for timestamps written during the test


@pytest.fixture(scope="session")
def node_harness() -> Path:
    """tests/api installed (npm ci, Prisma Client generated); skips without node or npm."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm not found: the Node API producer (tests/api) needs Node 20+")
    result = subprocess.run([REPO_ROOT / "scripts" / "ensure-node-packages.sh"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"scripts/ensure-node-packages.sh failed:\n{result.stderr}"
    return API / "producer.mjs"


@pytest.fixture(params=["moto", "seaweedfs+localstack"])
def backend(request: pytest.FixtureRequest, unique_name: str) -> dict[str, str]:
    """S3 and SQS servers with a fresh bucket, queue and dead-letter queue: moto for both, or
    SeaweedFS (S3, its own keys, SigV4 enforced) with LocalStack (SQS)."""
    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        s3 = {"endpoint": endpoint, "accessKey": "test", "secretKey": "test"}
        sqs_url = endpoint
    else:
        try:
            seaweedfs = request.getfixturevalue("seaweedfs")
            sqs_url = request.getfixturevalue("localstack_endpoint")
        except pytest.FixtureLookupError as exc:
            pytest.skip(f"no {exc.argname} fixture in tests/conftest.py")
        s3 = {"endpoint": seaweedfs.endpoint, "accessKey": seaweedfs.access_key,
              "secretKey": seaweedfs.secret_key}
    boto3.client("s3", endpoint_url=s3["endpoint"], region_name="us-east-1",
                 aws_access_key_id=s3["accessKey"], aws_secret_access_key=s3["secretKey"],
                 ).create_bucket(Bucket=unique_name)
    sqs = boto3.client("sqs", endpoint_url=sqs_url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    return {
        "s3": s3["endpoint"], "s3AccessKey": s3["accessKey"], "s3SecretKey": s3["secretKey"],
        "sqs": sqs_url, "bucket": unique_name,
        "queue": sqs.create_queue(QueueName=unique_name)["QueueUrl"],
        "dlq": sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"],
    }


@pytest.fixture
def prisma_database(postgres_url: str) -> str:
    """The API's database: Prisma's migration applied, a local time zone that is not UTC."""
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(
            sql.Identifier(name), sql.Literal(DATABASE_TIME_ZONE)))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(PRISMA_SQL.read_text(encoding="utf-8"))
    return postgres_url


def uploads(directory: Path) -> list[dict[str, str]]:
    """The files the API stores: the project's samples under awkward keys, a truncated JPEG."""
    jpeg, png, gif, mp4 = make_samples(directory / "samples")
    broken = directory / "broken.jpg"
    broken.write_bytes(jpeg.read_bytes()[:300])  # the header ends before the image starts
    return [
        {"path": str(jpeg), "key": "uploads/2026/été photo 1.jpg", "mimeType": "image/jpeg",
         "send": "single"},
        {"path": str(png), "key": "uploads/2026/11/logo (transparent) – v2.png",
         "mimeType": "image/png", "send": "batch"},
        {"path": str(gif), "key": "uploads/2026/11/анимация 🌀.gif", "mimeType": "image/gif",
         "send": "batch"},
        {"path": str(mp4), "key": "uploads/2026/11/clip #1 & more.mp4", "mimeType": "video/mp4",
         "send": "batch"},
        {"path": str(broken), "key": "uploads/2026/11/broken photo.jpg",
         "mimeType": "image/jpeg", "send": "single"},
        {"path": str(jpeg), "key": "uploads/2026/11/sent before commit.jpg",
         "mimeType": "image/jpeg", "send": "before-commit"},
    ]


def node_spec(database_url: str, backend: dict[str, str], **extra: Any) -> str:
    return json.dumps({
        "databaseUrl": database_url, "bucket": backend["bucket"], "queueUrl": backend["queue"],
        "s3": {"endpoint": backend["s3"], "region": "us-east-1",
               "accessKeyId": backend["s3AccessKey"], "secretAccessKey": backend["s3SecretKey"]},
        "sqs": {"endpoint": backend["sqs"], "region": "us-east-1",
                "accessKeyId": "test", "secretAccessKey": "test"},
        "uploadedBy": "user-42", **extra,
    })


def worker(database_url: str, backend: dict[str, str], workdir: Path) -> Deployment:
    return Deployment("api-producer", {
        "DATABASE_URL": database_url,
        "SQS_QUEUE_URL": backend["queue"], "SQS_DLQ_URL": backend["dlq"],
        "SQS_ENDPOINT": backend["sqs"], "MINIO_ENDPOINT": backend["s3"],
        "MINIO_BUCKET": backend["bucket"],
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "MINIO_ACCESS_KEY": backend["s3AccessKey"], "MINIO_SECRET_KEY": backend["s3SecretKey"],
        "SQS_WAIT_TIME_SECONDS": "1", "SQS_POLL_INTERVAL_MS": "100",
        "SQS_VISIBILITY_TIMEOUT": "60", "LOG_FORMAT": "json",
        "RECONCILE_INTERVAL_SECONDS": "0",
    }, workdir)


class Producer:
    """`node producer.mjs submit` in the background, read line by line."""

    def __init__(self, script: Path, spec: str) -> None:
        self.process = subprocess.Popen(
            ["node", str(script), "submit", spec], cwd=API, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def next_event(self) -> dict[str, Any]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        line = stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            raise AssertionError(f"producer exited {self.process.returncode}: "
                                 f"{self.process.stderr.read()}")  # type: ignore[union-attr]
        return json.loads(line)

    def commit(self) -> None:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write("commit\n")
        stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def producer(node_harness: Path) -> Iterator[list[Producer]]:
    started: list[Producer] = []
    yield started
    for process in started:
        process.close()


def wait_for_log(log: Path, media_id: str, timeout: float) -> list[dict[str, Any]]:
    """The worker's log events about `media_id`, once there is one (or [] after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        events = [event for event in log_events(text) if event.get("mediaId") == media_id]
        if events:
            return events
        time.sleep(0.1)
    return []


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_media_sent_by_a_prisma_and_aws_sdk_api_become_ready(
    node_harness: Path, producer: list[Producer], prisma_database: str,
    backend: dict[str, str], tmp_path: Path,
) -> None:
    files = uploads(tmp_path)
    started = datetime.now(UTC)
    submit = Producer(node_harness, node_spec(
        prisma_database, backend, files=files, commit={"onSignal": True, "maxSeconds": 60}))
    producer.append(submit)
    early = submit.next_event()
    assert early["event"] == "sent-before-commit", early

    deployment = worker(prisma_database, backend, tmp_path)
    log = tmp_path / "worker.log"
    run = deployment.start("run", "--drain", "--concurrency", "2", log=log)
    try:
        # The row commits only once the worker has had the job (a few seconds on).
        seen_before_commit = wait_for_log(log, early["id"], timeout=60)
        time.sleep(2.5)
        submit.commit()
        events = [submit.next_event() for _ in range(3)]
        assert [event["event"] for event in events] == ["committing", "committed", "submitted"]
        assert submit.process.wait(timeout=30) == 0
        submitted = {entry["id"]: entry for entry in events[-1]["media"]}
        assert run.wait(timeout=240) == 0, log.read_text()[-4000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert seen_before_commit, "the worker never received the job before its row committed"

    readback = subprocess.run(
        ["node", str(node_harness), "readback", node_spec(prisma_database, backend)],
        cwd=API, capture_output=True, text=True, timeout=120, check=False)
    assert readback.returncode == 0, readback.stderr
    result = json.loads(readback.stdout)
    rows = {row["id"]: row for row in result["rows"]}
    assert set(rows) == set(submitted)
    by_key = {row["key"]: row for row in rows.values()}
    assert set(by_key) == {file["key"] for file in files}
    now = parse_time(result["now"])
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=30)  # one clock for both sides

    problems = []
    for key, row in by_key.items():
        problems += row_problems(key, row, started, now)
    assert not problems, "\n".join(problems)

    updates = {update["id"]: update for update in result["updates"]}
    assert all(update["ok"] for update in updates.values()), result["updates"]
    for media_id, update in updates.items():
        assert update["metadata"]["reviewedBy"] == "api-harness"
        assert update["status"] == rows[media_id]["status"]
        assert parse_time(update["updatedAt"]) >= parse_time(rows[media_id]["updatedAt"])


def row_problems(key: str, row: dict[str, Any], started: datetime,
                 now: datetime) -> list[str]:
    """What is wrong with one row as the API reads it back (empty when all is right)."""
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{key}: {what}")

    metadata = row.get("metadata") or {}
    check(metadata.get("originalName") == key.rsplit("/", 1)[1]
          and metadata.get("uploadedBy") == "user-42",
          f"the API's metadata keys are gone: {sorted(metadata)}")
    for field in ("createdAt", "updatedAt", "processedAt"):
        value = row.get(field)
        check(value is not None and started - FRESH <= parse_time(value) <= now + FRESH,
              f"{field} {value} is not within {FRESH} of now in UTC ({now.isoformat()})")
    if "broken" in key:
        check(row["status"] == "FAILED" and bool(row.get("error")),
              f"status {row['status']} error {row.get('error')!r}, expected FAILED with an error")
        return problems
    check(row["status"] == "READY", f"status {row['status']} ({row.get('error')!r})")
    thumbnails = row.get("thumbnails") or []
    check({thumb.get("size") for thumb in thumbnails} == SIZES,
          f"thumbnail sizes {[thumb.get('size') for thumb in thumbnails]}")
    for thumb in thumbnails:
        expected_key = f"thumbnails/{row['id']}/{thumb.get('size')}.webp"
        stored = thumb.get("stored") or {}
        check(thumb.get("key") == expected_key, f"thumbnail key {thumb.get('key')!r}")
        check(stored.get("bytes") == thumb.get("bytes") and stored.get("bytes", 0) > 0,
              f"thumbnail {thumb.get('key')} in storage: {stored}, row says {thumb.get('bytes')}")
        check(thumb.get("mimeType") == "image/webp", f"thumbnail mimeType {thumb.get('mimeType')}")
    check(isinstance(metadata.get("width"), int) and isinstance(metadata.get("height"), int),
          f"no width/height in metadata {metadata}")
    check(row.get("error") is None, f"error {row.get('error')!r} on a READY row")
    return problems


def test_the_recorded_prisma_sql_is_what_prisma_makes_of_the_model(
    node_harness: Path, postgres_server: str,
) -> None:
    """tests/api/fixtures/prisma-migration.sql was regenerated after the last model change."""
    result = subprocess.run(
        ["node", str(API / "prisma-sql.mjs"), "--check"], cwd=API, capture_output=True,
        text=True, timeout=120, check=False, env={**os.environ, "DATABASE_URL": postgres_server})
    assert result.returncode == 0, result.stderr


def test_the_shipped_generator_block_generates_a_client(node_harness: Path, tmp_path: Path) -> None:
    """deploy/prisma/media.prisma as the API team has it: Prisma 7's `prisma-client` generator
    writes its TypeScript client (offline; the harness itself runs the JavaScript one)."""
    schema = tmp_path / "schema.prisma"
    shutil.copy(REPO_ROOT / "deploy" / "prisma" / "media.prisma", schema)
    result = subprocess.run(
        ["node", str(API / "node_modules" / "prisma" / "build" / "index.js"), "generate",
         "--schema", str(schema)], cwd=API, capture_output=True, text=True, timeout=120,
        check=False, env={**os.environ, "CHECKPOINT_DISABLE": "1",
                          "PRISMA_SCHEMA_ENGINE_BINARY": str(API / "schema-engine-unavailable")})
    assert result.returncode == 0, result.stdout + result.stderr
    client = (tmp_path / "generated" / "client.ts").read_text(encoding="utf-8")
    assert "export const PrismaClient" in client
    assert (tmp_path / "generated" / "enums.ts").is_file()
