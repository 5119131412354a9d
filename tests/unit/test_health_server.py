"""HealthServer over real HTTP on a free loopback port: what probes and Prometheus see."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import structlog
from structlog.testing import capture_logs

from media_worker.observability.health import HealthServer
from media_worker.observability.metrics import WorkerMetrics


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def get(server: HealthServer, path: str) -> Response:
    """GET a path, returning error statuses (404, 503) instead of raising."""
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return Response(reply.status, reply.read(), reply.headers["Content-Type"])
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), error.headers["Content-Type"])


class Switch:
    """A check that fails with a given error until it is turned back on."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __call__(self) -> None:
        if self.error is not None:
            raise self.error


def ok() -> None:
    """A check that always passes."""


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics()


@pytest.fixture
def serve(metrics: WorkerMetrics) -> Iterator[Callable[..., HealthServer]]:
    started: list[HealthServer] = []

    def start(checks: dict[str, Callable[[], None]], **options: float) -> HealthServer:
        server = HealthServer(0, metrics, checks, host="127.0.0.1", **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_port_zero_binds_a_free_port(serve: Callable[..., HealthServer]) -> None:
    assert serve({}).port > 0


def test_healthz_answers_ok_while_running(serve: Callable[..., HealthServer]) -> None:
    response = get(serve({"database": Switch()}), "/healthz")
    assert (response.status, response.body.strip()) == (200, b"ok")


def test_healthz_does_not_run_the_readiness_checks(serve: Callable[..., HealthServer]) -> None:
    failing = Switch()
    failing.error = ConnectionError("down")
    assert get(serve({"database": failing}), "/healthz").status == 200


def test_readyz_is_ready_when_every_check_passes(serve: Callable[..., HealthServer]) -> None:
    response = get(serve({"queue": ok, "storage": ok, "database": ok}), "/readyz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.json() == {
        "status": "ready", "checks": {"queue": "ok", "storage": "ok", "database": "ok"}
    }


def test_readyz_names_the_failing_check_and_recovers(
    serve: Callable[..., HealthServer],
) -> None:
    database = Switch()
    server = serve({"queue": ok, "database": database})
    database.error = ConnectionRefusedError("connection refused")

    down = get(server, "/readyz")
    assert down.status == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["checks"] == {"queue": "ok", "database": "connection refused"}

    database.error = None
    assert get(server, "/readyz").status == 200


def test_readyz_sets_dependency_up(
    serve: Callable[..., HealthServer], metrics: WorkerMetrics
) -> None:
    database = Switch()
    database.error = OSError("unreachable")
    get(serve({"queue": ok, "database": database}), "/readyz")
    exposition = metrics.render().decode()
    assert 'media_worker_dependency_up{dependency="database"} 0.0' in exposition
    assert 'media_worker_dependency_up{dependency="queue"} 1.0' in exposition


def test_readyz_never_shows_a_password(serve: Callable[..., HealthServer]) -> None:
    database = Switch()
    database.error = RuntimeError("cannot connect to postgresql://u:hunter2@h/db: timeout")
    response = get(serve({"database": database}), "/readyz")
    assert response.status == 503
    assert b"hunter2" not in response.body
    assert "postgresql://u:***@h/db" in response.json()["checks"]["database"]  # type: ignore[index]


def test_a_hanging_check_times_out(serve: Callable[..., HealthServer]) -> None:
    release = threading.Event()
    server = serve({"database": lambda: release.wait(30), "queue": ok}, check_timeout=0.3)
    try:
        started = time.monotonic()
        response = get(server, "/readyz")
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert response.status == 503
    assert response.json()["checks"] == {"database": "timed out after 0.3 s", "queue": "ok"}
    assert elapsed < 5


def test_metrics_serves_the_exposition_format(
    serve: Callable[..., HealthServer], metrics: WorkerMetrics
) -> None:
    metrics.job_finished("ready", "image", 0.4)
    response = get(serve({}), "/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    text = response.body.decode()
    assert "# TYPE media_worker_jobs_total counter" in text
    assert 'media_worker_jobs_total{outcome="ready"} 1.0' in text
    assert "# TYPE media_worker_job_duration_seconds histogram" in text


def test_unknown_path_is_404(serve: Callable[..., HealthServer]) -> None:
    assert get(serve({}), "/admin").status == 404


def test_stop_releases_the_port_and_is_idempotent(metrics: WorkerMetrics) -> None:
    server = HealthServer(0, metrics, {}, host="127.0.0.1")
    server.start()
    port = server.port
    server.stop()
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_dependency_changes_are_logged_once_without_secrets(metrics: WorkerMetrics) -> None:
    database = Switch()
    database.error = RuntimeError("cannot connect to postgresql://u:hunter2@h/db")
    with capture_logs() as logs:
        server = HealthServer(0, metrics, {"database": database}, host="127.0.0.1",
                              logger=structlog.get_logger())
        server.readiness()
        server.readiness()
        database.error = None
        server.readiness()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [("dependency unreachable", "warning"), ("dependency reachable", "info")]
    assert "hunter2" not in str(logs)
