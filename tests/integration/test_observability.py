"""Observability of a real worker: /metrics moves with the jobs, logs are JSON with the ids,
and no secret reaches a log line."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

import pytest

from tests.conftest import free_port
from tests.integration.deployments import Deployment, log_events

pytestmark = pytest.mark.services


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def create_bucket(deployment: Deployment) -> None:
    """As in production, the bucket exists before the worker starts (/readyz checks it)."""
    with deployment.components() as components:
        components.storage.ensure_bucket(deployment.settings().minio_bucket)


def start_worker(deployment: Deployment, tmp_path: Path) -> tuple[Popen, int, Path]:
    port = free_port()
    deployment.env["METRICS_PORT"] = str(port)
    log = tmp_path / "worker.log"
    worker = deployment.start("run", log=log)
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2))
    return worker, port, log


@pytest.fixture
def running_worker(deployment: Deployment, tmp_path: Path) -> Iterator[tuple[Popen, int, Path]]:
    create_bucket(deployment)
    worker, port, log = start_worker(deployment, tmp_path)
    yield worker, port, log
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0


def test_metrics_move_as_the_jobs_do(
    deployment: Deployment, running_worker: tuple[Popen, int, Path], corpus: Path,
    tmp_path: Path,
) -> None:
    _, port, _ = running_worker
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
    deployment.enqueue(corpus / "images" / "orientation" / "Landscape_3.jpg",
                       corpus / "videos" / "sample.mp4", broken)
    wait_for(lambda: scrape(port).get('media_worker_jobs_total{outcome="ready"}') == 2)
    wait_for(lambda: scrape(port).get(
        'media_worker_jobs_total{outcome="failed_permanent"}') == 1)
    samples = scrape(port)
    assert samples['media_worker_job_duration_seconds_count{kind="image"}'] == 1
    assert samples['media_worker_job_duration_seconds_count{kind="video"}'] == 1
    assert samples['media_worker_stage_duration_seconds_count{kind="image",stage="render"}'] == 1
    assert samples['media_worker_thumbnails_total{size="small"}'] == 2
    assert samples["media_worker_input_bytes_total"] > 100_000
    assert samples["media_worker_output_bytes_total"] > 1_000
    assert samples["media_worker_jobs_in_flight"] == 0
    assert any(key.startswith("media_worker_engine_errors_total") and value == 1
               for key, value in samples.items())


def test_readyz_is_ready_when_every_dependency_answers(
    running_worker: tuple[Popen, int, Path],
) -> None:
    _, port, _ = running_worker
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
        body = json.loads(response.read())
    assert body == {"status": "ready",
                    "checks": {"queue": "ok", "storage": "ok", "database": "ok"}}


def test_readyz_is_unavailable_while_the_bucket_does_not_exist(
    deployment: Deployment, tmp_path: Path,
) -> None:
    worker, port, _ = start_worker(deployment, tmp_path)
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert answer.value.code == 503
        checks = json.loads(answer.value.read())["checks"]
        assert checks["queue"] == checks["database"] == "ok"
        assert "does not exist" in checks["storage"]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def test_log_lines_are_json_carrying_the_job_ids(
    deployment: Deployment, corpus: Path
) -> None:
    ids = deployment.enqueue(corpus / "images" / "orientation" / "Portrait_5.jpg")
    result = deployment.drain()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    events = log_events(result.stderr)
    assert len(events) == len(lines)  # every line is one JSON object
    [ready] = [e for e in events if e["event"] == "ready"]
    assert ready["mediaId"] == ids[0]
    assert {"jobId", "messageId", "attempt", "stage", "seconds", "timestamp", "level"} <= set(
        ready)


def test_no_secret_in_logs_when_the_database_refuses_a_connection(
    deployment: Deployment, corpus: Path
) -> None:
    deployment.enqueue(corpus / "images" / "orientation" / "Portrait_1.jpg")
    secret = f"s3cret-{uuid.uuid4().hex[:8]}"
    deployment.env["DATABASE_URL"] = f"postgresql://app:{secret}@127.0.0.1:{free_port()}/x"
    deployment.env["SQS_POLL_INTERVAL_MS"] = "200"
    result = deployment.command("run", "--drain", timeout=120)
    output = result.stdout + result.stderr
    assert secret not in output
    assert re.search(r"database unavailable", output)


def readiness(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_readyz_turns_unavailable_while_the_database_is_down_and_recovers(
    services_deployment: Deployment, tmp_path: Path
) -> None:
    from tests.faults.proxy import TcpProxy

    deployment = services_deployment
    create_bucket(deployment)
    database = deployment.env["DATABASE_URL"]
    with TcpProxy("127.0.0.1", 5432) as proxy:
        deployment.env["DATABASE_URL"] = database.replace("127.0.0.1:5432", proxy.address)
        port = free_port()
        deployment.env["METRICS_PORT"] = str(port)
        worker = deployment.start("run", log=tmp_path / "worker.log")
        try:
            wait_for(lambda: readiness(port)[0] == 200)
            proxy.cut()
            status, body = readiness(port)
            assert status == 503
            assert body["checks"]["database"] != "ok"
            assert body["checks"]["queue"] == "ok"
            assert scrape(port)['media_worker_dependency_up{dependency="database"}'] == 0
            proxy.restore()
            wait_for(lambda: readiness(port)[0] == 200)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
