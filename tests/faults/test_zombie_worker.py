"""Scenario 8: a zombie worker.

Worker A is paused (SIGSTOP) in the middle of a download, past its lease; worker B claims the
row and finishes it. When A resumes (SIGCONT) its claim is stale: it must write nothing, neither
the row nor a single thumbnail, and must not report the job `ready`.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.faults.harness import Lab, expected_keys, make_noisy_png, wait_until

pytestmark = pytest.mark.services

CLAIM_LOST = "claim lost while rendering; another worker owns the row now; nothing uploaded"


def test_a_paused_worker_whose_lease_passed_changes_nothing_when_resumed(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    services.keep_every_upload()
    image = make_noisy_png(tmp_path / "zombie.png", 600)  # 1.1 MB
    services.s3.throttle(50_000)  # A's download would take about 20 s
    zombie = fleet.start("zombie")
    fleet.wait_started(zombie)
    [media_id] = services.enqueue(image)
    wait_until(lambda: services.row(media_id).status is MediaStatus.PROCESSING, timeout=30,
               what="A's claim")

    zombie.signal(signal.SIGSTOP)
    services.s3.throttle(None)
    successor = fleet.start("successor")
    finished = wait_until(lambda: (row := services.row(media_id)).status is MediaStatus.READY
                          and row, timeout=60, what="B to finish the job")
    thumbnails = services.thumbnail_bytes(media_id)

    zombie.signal(signal.SIGCONT)
    wait_until(lambda: zombie.logged(CLAIM_LOST), timeout=60, what="A to notice its lost claim")

    assert finished.attempts == 2
    assert services.row(media_id) == finished, "the zombie changed the row"
    assert services.thumbnail_bytes(media_id) == thumbnails
    assert services.uploads_per_key() == Counter(dict.fromkeys(expected_keys([media_id]), 1))
    assert successor.logged("ready", mediaId=media_id)
    assert not zombie.logged("ready")
    lab.conclude("zombie", [media_id])
