"""Scenario 1: three workers, many jobs, one worker killed with SIGKILL twice mid-run.

A killed worker hands nothing back: its messages return after their visibility timeout and its
rows are claimed again once their leases pass. Nothing may be lost or done twice; the few
deliberately corrupt uploads among the jobs end FAILED with a reason, like without the kills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.faults.harness import Lab, make_corrupt_jpeg, make_images, wait_until

pytestmark = pytest.mark.services

JOBS = 120
CORRUPT = 3


def test_a_worker_killed_twice_mid_run_loses_nothing_and_repeats_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    corrupt = [make_corrupt_jpeg(tmp_path / f"corrupt-{n}.jpg") for n in range(CORRUPT)]
    good = make_images(tmp_path / "media", JOBS - CORRUPT)
    ids = services.enqueue(*good[:40], *corrupt, *good[40:])
    bad = frozenset(ids[40:40 + CORRUPT])
    victim, *_ = fleet.start_many(3)

    for share in (0.25, 0.5):
        wait_until(lambda s=share: services.counts()[MediaStatus.READY] >= s * JOBS,
                   timeout=90, what=f"{share:.0%} of the jobs READY")
        in_flight = services.counts()[MediaStatus.PROCESSING]
        fleet.kill(victim)
        assert victim.exit_code == -9
        print(f"\nkilled {victim.name} with {in_flight} rows PROCESSING in the fleet")
        victim = fleet.start()

    lab.conclude("kill-workers", ids, bad=bad)
    reclaimed = [r for r in services.rows(ids) if r.attempts > 1]
    print(f"rows claimed more than once (after a kill): {len(reclaimed)}")
