"""Scenario 6: every job message delivered twice (the duplicates sent on purpose).

The claim lets exactly one delivery through per media: thumbnails are rendered and uploaded
once, and the other delivery is dropped as already finished.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.faults.harness import Lab, expected_keys, make_images

pytestmark = pytest.mark.services

JOBS = 40


def test_every_message_delivered_twice_makes_thumbnails_once(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    services.keep_every_upload()
    ids = services.enqueue(*make_images(tmp_path / "media", JOBS))
    services.duplicate_every_job(len(ids))
    fleet.start_many(2)

    lab.conclude("duplicate-delivery", ids)
    assert fleet.ready_counts() == Counter(dict.fromkeys(ids, 1))
    assert services.uploads_per_key() == Counter(dict.fromkeys(expected_keys(ids), 1))
    assert all(record.attempts == 1 for record in services.rows(ids))
    dropped = fleet.events("already finished; dropping the duplicate message")
    assert sorted(event["mediaId"] for event in dropped) == sorted(ids)
