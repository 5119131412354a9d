"""The reconciliation sweep, on the embedded adapters."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import structlog

from media_worker.queue.sqlite import SqliteQueue
from media_worker.reconcile import Reconciler
from media_worker.repository.port import NewMedia
from media_worker.repository.sqlite import SqliteMediaRepository


@pytest.fixture
def repository(tmp_path: Path) -> SqliteMediaRepository:
    repo = SqliteMediaRepository(tmp_path / "media.db")
    repo.migrate()
    return repo


@pytest.fixture
def queue(tmp_path: Path) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db", visibility_timeout=30)


def reconciler(repository: SqliteMediaRepository, queue: SqliteQueue,
               stranded_after: float, max_queue_depth: int = 100) -> Reconciler:
    return Reconciler(repository, queue, stranded_after_seconds=stranded_after,
                      max_queue_depth=max_queue_depth, logger=structlog.get_logger())


def insert(repository: SqliteMediaRepository) -> str:
    media_id = str(uuid.uuid4())
    repository.insert(NewMedia(id=media_id, bucket="media", key=f"k/{media_id}"))
    return media_id


def sent_ids(queue: SqliteQueue) -> list[str]:
    return [json.loads(m.body)["mediaId"] for m in queue.receive(10, 0)]


def test_a_long_pending_row_gets_a_new_message(repository, queue) -> None:
    media_id = insert(repository)
    time.sleep(0.05)
    assert reconciler(repository, queue, stranded_after=0.01).sweep() == 1
    assert sent_ids(queue) == [media_id]


def test_a_recent_pending_row_is_left_to_its_own_message(repository, queue) -> None:
    insert(repository)
    assert reconciler(repository, queue, stranded_after=600).sweep() == 0


def test_a_processing_row_with_a_long_expired_lease_gets_a_new_message(
    repository, queue
) -> None:
    media_id = insert(repository)
    repository.claim(media_id, lease_seconds=0)
    time.sleep(0.05)
    assert reconciler(repository, queue, stranded_after=0.01).sweep() == 1
    assert sent_ids(queue) == [media_id]


def test_a_processing_row_under_a_live_lease_is_left_alone(repository, queue) -> None:
    media_id = insert(repository)
    repository.claim(media_id, lease_seconds=600)
    time.sleep(0.05)
    assert reconciler(repository, queue, stranded_after=0.01).sweep() == 0


def test_finished_rows_are_never_re_sent(repository, queue) -> None:
    media_id = insert(repository)
    claim = repository.claim(media_id, lease_seconds=600)
    assert claim is not None
    repository.fail(claim, "corrupt")
    time.sleep(0.05)
    assert reconciler(repository, queue, stranded_after=0.01).sweep() == 0


def test_only_one_replica_sweeps_at_a_time(repository, queue) -> None:
    media_id = insert(repository)
    time.sleep(0.05)
    first = reconciler(repository, queue, stranded_after=0.01)
    second = reconciler(repository, queue, stranded_after=0.01)
    first.step()
    second.step()
    assert sent_ids(queue) == [media_id]  # one message, not one per replica
    first.close()


def test_the_sweep_passes_to_another_replica_when_its_leader_goes(repository, queue) -> None:
    media_id = insert(repository)
    time.sleep(0.05)
    first = reconciler(repository, queue, stranded_after=0.01)
    first.step()
    assert sent_ids(queue) == [media_id]
    first.close()  # the leader stops (or dies: the lock goes with its file descriptor)
    second = reconciler(repository, queue, stranded_after=0.01)
    second.step()
    assert sent_ids(queue) == [media_id]
    second.close()


def test_no_sweep_while_the_queue_is_deep(repository, queue) -> None:
    insert(repository)
    time.sleep(0.05)
    for _ in range(3):
        queue.send('{"mediaId": "backlog"}')
    reconciler(repository, queue, stranded_after=0.01, max_queue_depth=2).step()
    assert sorted(set(sent_ids(queue))) == ["backlog"]
