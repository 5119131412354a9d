"""Scenario 3: PostgreSQL unreachable for a while mid-run, then back.

The shared server is not restarted: the proxy in front of it is cut, so every pooled
connection dies and new ones are refused. The workers must neither crash nor spin, `/readyz`
must say the database is down, and the workers must reconnect by themselves when it returns.
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


def test_database_unreachable_mid_run_then_everything_finishes(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    ids = services.enqueue(*make_images(tmp_path / "media", JOBS))
    metrics_port = free_port()
    workers = [fleet.start(env={"METRICS_PORT": str(metrics_port)}), fleet.start()]
    wait_until(lambda: services.counts()[MediaStatus.READY] >= JOBS // 6, timeout=60,
               what="the first jobs READY")

    with outage(services.database, seconds=OUTAGE_SECONDS):
        ready_when_cut = services.counts()[MediaStatus.READY]
        degraded = wait_for_readiness(metrics_port, 503, timeout=OUTAGE_SECONDS - 2)
    assert {name for name, result in degraded.items() if result != "ok"} == {"database"}
    assert ready_when_cut < JOBS, "the outage must hit the run in the middle"
    assert all(worker.alive() for worker in workers), "a worker died during the outage"

    wait_for_readiness(metrics_port, 200, timeout=30)
    lab.conclude("postgres-outage", ids, timeout=120)
    for worker in workers:
        # Waiting, not spinning: at most about one pause per poll interval.
        pauses = len(worker.logged("database unavailable; pausing before the next receive"))
        assert pauses <= OUTAGE_SECONDS / POLL_INTERVAL + 5, pauses
