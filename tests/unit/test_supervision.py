"""Supervised background loops: a step that raises is logged, counted and retried; a loop
that keeps failing makes /healthz unhealthy until it recovers."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import structlog
from structlog.testing import capture_logs

from media_worker.observability.health import HealthServer
from media_worker.observability.metrics import WorkerMetrics
from media_worker.supervision import Supervision
from tests.unit.test_metrics import sample


class FlakyStep:
    """Raises for its first `failures` calls, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.calls = 0
        self.failures = failures
        self.succeeded = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise KeyError("an error nobody mapped")
        self.succeeded.set()


def test_a_step_that_raises_is_retried_and_the_loop_lives_on() -> None:
    metrics = WorkerMetrics()
    step = FlakyStep(failures=2)
    supervision = Supervision(structlog.get_logger("test"), metrics)
    loop = supervision.loop("heartbeat", step, interval=0.05, run_first=True)
    with capture_logs() as logs:
        loop.start()
        assert step.succeeded.wait(10)
        loop.stop()
    failures = [entry for entry in logs if entry["event"].startswith("background loop failed")]
    assert len(failures) == 2
    assert failures[0]["thread"] == "heartbeat"
    assert failures[0]["exc_info"] is True  # logged with its traceback
    assert sample(metrics, "media_worker_background_failures_total", thread="heartbeat") == 2


def test_a_loop_failing_again_and_again_is_reported_until_it_recovers() -> None:
    supervision = Supervision(structlog.get_logger("test"))
    step = FlakyStep(failures=10**9)
    loop = supervision.loop("reconciler", step, interval=0.01, run_first=True,
                            unhealthy_after=2)
    loop.start()
    deadline = time.monotonic() + 10
    while not supervision.liveness.problems() and time.monotonic() < deadline:
        time.sleep(0.01)
    problems = supervision.liveness.problems()
    assert "reconciler" in problems
    assert "KeyError" in problems["reconciler"] or "an error nobody mapped" in problems[
        "reconciler"]
    step.failures = 0  # the dependency comes back
    deadline = time.monotonic() + 10
    while supervision.liveness.problems() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert supervision.liveness.problems() == {}
    loop.stop()


def test_healthz_is_unhealthy_while_a_background_loop_cannot_be_kept_alive() -> None:
    supervision = Supervision(structlog.get_logger("test"))
    loop = supervision.loop("heartbeat", FlakyStep(failures=10**9), interval=0.01,
                            run_first=True, unhealthy_after=1)
    with HealthServer(0, WorkerMetrics(), {}, host="127.0.0.1",
                      liveness=supervision.liveness) as server:
        url = f"http://127.0.0.1:{server.port}/healthz"
        with urllib.request.urlopen(url) as response:
            assert response.status == 200
        loop.start()
        deadline = time.monotonic() + 10
        while not supervision.liveness.problems() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(url)
        assert answer.value.code == 503
        assert "heartbeat" in json.loads(answer.value.read())["threads"]
        loop.stop()
