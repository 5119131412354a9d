"""Scenario 7: poison messages.

A body that is not JSON, JSON without `mediaId`, and 256 KB of junk can never be processed:
each is moved to the dead-letter queue once, never retried. A `mediaId` that names no row (here
not even a UUID) is skipped and deleted once its MISSING_ROW_GRACE_SECONDS have passed (none
here: the grace for rows committed after their message has its own tests). The worker keeps
running and processes the next good job.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from tests.faults.harness import Lab, make_images, wait_until

pytestmark = pytest.mark.services

SQS_MAX_MESSAGE = 256 * 1024


def junk(size: int) -> str:
    """Random printable characters (valid in an SQS body), not JSON."""
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    return "".join(random.Random(7).choices(alphabet, k=size))


def test_poison_messages_are_moved_aside_and_the_worker_goes_on(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    unusable = {
        "not json": "this is { not json",
        "no mediaId": json.dumps({"jobId": "j-1", "type": "THUMBNAIL"}),
        "256 KB of junk": "#" + junk(SQS_MAX_MESSAGE - 1024),
    }
    rowless = json.dumps({"jobId": "j-2", "mediaId": "not-a-uuid"})
    worker = fleet.start(env={"MISSING_ROW_GRACE_SECONDS": "0"})
    fleet.wait_started(worker)
    for body in [*unusable.values(), rowless]:
        services.send(body)

    wait_until(lambda: len(fleet.events("poison message")) == len(unusable)
               and fleet.events("no such media row; dropping the message"),
               timeout=60, what="every poison message handled")
    wait_until(lambda: services.depth().in_flight == services.depth().visible == 0,
               timeout=30, what="the main queue empty")
    assert worker.alive()
    assert sorted(body for _, body, _ in services.dead_letters()) == sorted(unusable.values())

    [media_id] = services.enqueue(*make_images(tmp_path / "media", 1))
    lab.conclude("poison-messages", [media_id])
    assert len(fleet.events("poison message")) == len(unusable), "a poison message came back"
    assert services.depth().dead_letter == len(unusable)
