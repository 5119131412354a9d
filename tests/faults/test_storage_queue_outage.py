"""Scenario 2: the S3/SQS server unreachable for a while mid-run, then back.

moto keeps its state in memory, so it is not restarted: the proxies in front of it are cut.
The workers must neither crash nor spin, and `/readyz` must say what is down; jobs caught by
the outage go back to be retried and every media ends READY once the server is back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.conftest import free_port
from tests.faults.harness import (
    FAULT_TIMINGS,
    Lab,
    make_images,
    outage,
    wait_for_readiness,
    wait_until,
)

pytestmark = pytest.mark.services

JOBS = 48
OUTAGE_SECONDS = 12
POLL_INTERVAL = int(FAULT_TIMINGS["SQS_POLL_INTERVAL_MS"]) / 1000


def test_storage_and_queue_unreachable_mid_run_then_everything_finishes(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    ids = services.enqueue(*make_images(tmp_path / "media", JOBS))
    metrics_port = free_port()
    workers = [fleet.start(env={"METRICS_PORT": str(metrics_port)}), fleet.start()]
    wait_until(lambda: services.counts()[MediaStatus.READY] >= JOBS // 6, timeout=60,
               what="the first jobs READY")

    with outage(services.s3, services.sqs, seconds=OUTAGE_SECONDS):
        ready_when_cut = services.counts()[MediaStatus.READY]
        degraded = wait_for_readiness(metrics_port, 503, timeout=OUTAGE_SECONDS - 2)
    assert {name for name, result in degraded.items() if result != "ok"} == {'storage', 'queue'}
    assert ready_when_cut < JOBS, "the outage must hit the run in the middle"
    assert all(worker.alive() for worker in workers), "a worker died during the outage"

    wait_for_readiness(metrics_port, 200, timeout=30)
    lab.conclude("s3-sqs-outage", ids, timeout=120)
    for worker in workers:
        # Waiting, not spinning: at most about one failed receive per poll interval.
        failed_receives = len(worker.logged("receive failed; pausing"))
        assert failed_receives <= OUTAGE_SECONDS / POLL_INTERVAL + 5, failed_receives
