"""Scenario 5: a job three times longer than SQS_VISIBILITY_TIMEOUT, with two workers running.

The heartbeat keeps the message hidden and the row leased while the (throttled) download runs,
so the other worker never receives it: one delivery, one claim, one `ready`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import VISIBILITY_TIMEOUT, Lab

pytestmark = pytest.mark.services


def test_a_job_three_visibility_timeouts_long_is_processed_once(
    lab: Lab, corpus: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    photo = corpus / "images" / "camera" / "HMD_Nokia_8.3_5G.jpg"  # 2.2 MB
    seconds = 3.5 * VISIBILITY_TIMEOUT
    services.s3.throttle(photo.stat().st_size / seconds)
    fleet.wait_started(*fleet.start_many(2))
    [media_id] = services.enqueue(photo)

    lab.conclude("long-job", [media_id], timeout=seconds + 60)
    [ready] = fleet.events("ready")
    assert ready["mediaId"] == media_id
    assert ready["seconds"] >= 3 * VISIBILITY_TIMEOUT
    assert ready["receiveCount"] == 1
    assert ready["attempt"] == 1
    assert services.row(media_id).attempts == 1
    assert not fleet.events("held by another worker's live lease; leaving the message alone")
