"""Scenario 9: the queue delete fails after the row is READY.

SQS is cut while the job runs, so the row turns READY (the database is fine) but the delete of
its message fails. The row is the source of truth: the redelivery finds READY and deletes the
message, and the job is not done again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.faults.harness import Lab, make_noisy_png, wait_until

pytestmark = pytest.mark.services

DELETE_FAILED = "could not delete the message; its redelivery will be skipped"


def test_a_failed_delete_after_ready_ends_in_one_redelivery_that_is_skipped(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    image = make_noisy_png(tmp_path / "photo.png", 300)  # 270 kB
    services.s3.throttle(100_000)  # a download of about 3 s: time to cut SQS meanwhile
    worker = fleet.start()
    fleet.wait_started(worker)
    [media_id] = services.enqueue(image)
    wait_until(lambda: services.row(media_id).status is MediaStatus.PROCESSING, timeout=30,
               what="the job claimed")

    services.sqs.cut()
    wait_until(lambda: worker.logged(DELETE_FAILED, mediaId=media_id), timeout=60,
               what="the delete to fail")
    assert services.row(media_id).status is MediaStatus.READY
    services.sqs.restore()

    wait_until(lambda: worker.logged("already finished; dropping the duplicate message",
                                     mediaId=media_id),
               timeout=60, what="the redelivery to be dropped")
    lab.conclude("delete-fails-after-ready", [media_id])
    assert services.row(media_id).attempts == 1
    assert len(worker.logged("ready", mediaId=media_id)) == 1
