"""Status events in the repositories: every adapter (PostgreSQL, SQLite) writes each status
change's event into the outbox in the same transaction, and its OutboxStore hands the rows out
as the dispatchers need them (tests/contract/test_repository_contract.py is the rest)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from media_worker.errors import SchemaMissingError
from media_worker.events.outbox import EventRecording, OutboxStore, Settled
from media_worker.repository.port import Claim, MediaStore, NewMedia
from media_worker.repository.postgres import PostgresMediaRepository
from media_worker.repository.sqlite import SqliteMediaRepository
from media_worker.types import ThumbnailData

THUMB = ThumbnailData(size="small", width=150, height=100, format="webp",
                      mime_type="image/webp", bucket="media", key="thumbnails/x/small.webp",
                      bytes=4211)
BOTH = ("webhook", "sqs")
EVENT_KEYS = {"type", "id", "mediaId", "jobId", "status", "attempts", "error", "thumbnails",
              "metadata", "occurredAt"}
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]


def make_repository(kind: str, request: pytest.FixtureRequest,
                    recording: EventRecording, *, migrate: bool = True) -> MediaStore:
    if kind == "postgres":
        repo: MediaStore = PostgresMediaRepository(request.getfixturevalue("postgres_url"),
                                                   events=recording, pool_max=10)
    else:
        repo = SqliteMediaRepository(request.getfixturevalue("tmp_path") / "media.db",
                                     events=recording)
    request.addfinalizer(repo.close)
    if migrate:
        repo.migrate()
    return repo


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def repository(kind: str, request: pytest.FixtureRequest) -> MediaStore:
    return make_repository(kind, request, EventRecording(targets=BOTH))


@pytest.fixture
def outbox(repository: MediaStore) -> OutboxStore:
    return repository.outbox()


def insert(repository: MediaStore) -> str:
    media_id = str(uuid.uuid4())
    repository.insert(NewMedia(id=media_id, bucket="media", key=f"uploads/{media_id}.jpg"))
    return media_id


def claimed(repository: MediaStore, job_id: str = "job-1", lease: int = 300) -> Claim:
    claim = repository.claim(insert(repository), lease, job_id=job_id)
    assert claim is not None
    return claim


def events(outbox: OutboxStore, target: str = "webhook") -> list[dict]:
    return [json.loads(e.payload) for e in outbox.follow(0, 1000) if e.target == target]


# --- what each status change writes -------------------------------------------------------
def test_a_claim_writes_one_processing_event_per_target(repository: MediaStore,
                                                        outbox: OutboxStore) -> None:
    claim = claimed(repository, job_id="job-7")
    rows = outbox.follow(0, 100)
    assert sorted(row.target for row in rows) == sorted(BOTH)
    assert len({row.event_id for row in rows}) == 1  # one event, one row per target
    event = json.loads(rows[0].payload)
    assert set(event) == EVENT_KEYS
    assert event["id"] == rows[0].event_id
    assert (event["type"], event["mediaId"], event["jobId"], event["status"],
            event["attempts"]) == ("media.processing", claim.media_id, "job-7", "PROCESSING", 1)
    assert event["occurredAt"].endswith("Z")
    assert (event["thumbnails"], event["metadata"]) == (None, None)


def test_the_ready_event_carries_thumbnails_and_metadata(repository: MediaStore,
                                                         outbox: OutboxStore) -> None:
    claim = claimed(repository)
    assert repository.complete(claim, [THUMB], {"width": 4000})
    ready = events(outbox)[-1]
    assert (ready["type"], ready["status"], ready["error"]) == ("media.ready", "READY", None)
    assert ready["thumbnails"] == [THUMB.to_wire()]
    assert ready["metadata"] == {"width": 4000}
    record = repository.get(claim.media_id)
    assert record is not None
    assert record.updated_at is not None
    assert ready["occurredAt"] == (record.updated_at.strftime("%Y-%m-%dT%H:%M:%S.")
                                   + f"{record.updated_at.microsecond // 1000:03d}Z")


def test_a_failure_and_a_retry_are_events_with_their_error(repository: MediaStore,
                                                           outbox: OutboxStore) -> None:
    first = claimed(repository)
    assert repository.release(first, "storage unreachable")
    second = claimed(repository)
    assert repository.fail(second, "corrupt file")
    by_media = {e["mediaId"]: e for e in events(outbox)}
    assert (by_media[first.media_id]["type"], by_media[first.media_id]["status"],
            by_media[first.media_id]["error"]) == ("media.retrying", "PENDING",
                                                   "storage unreachable")
    assert (by_media[second.media_id]["type"], by_media[second.media_id]["error"]) == (
        "media.failed", "corrupt file")


def test_a_retried_write_of_the_same_claim_writes_no_second_event(
    repository: MediaStore, outbox: OutboxStore,
) -> None:
    claim = claimed(repository)
    assert repository.complete(claim, [THUMB], {})
    assert repository.complete(claim, [THUMB], {})  # its first answer was lost
    assert [e["type"] for e in events(outbox)] == ["media.processing", "media.ready"]


def test_a_write_of_a_lost_claim_writes_no_event(repository: MediaStore,
                                                 outbox: OutboxStore) -> None:
    stale = claimed(repository, lease=0)
    time.sleep(0.05)
    assert repository.claim(stale.media_id, 300, job_id="job-2") is not None
    assert not repository.complete(stale, [THUMB], {})
    assert [(e["type"], e["jobId"], e["attempts"]) for e in events(outbox)] == [
        ("media.processing", "job-1", 1), ("media.processing", "job-2", 2)]


def test_extending_a_lease_is_no_event(repository: MediaStore, outbox: OutboxStore) -> None:
    claim = claimed(repository)
    assert repository.extend_lease(claim, 600)
    assert [e["type"] for e in events(outbox)] == ["media.processing"]


def test_an_operators_requeue_is_a_retrying_event(repository: MediaStore,
                                                  outbox: OutboxStore) -> None:
    claim = claimed(repository)
    repository.fail(claim, "corrupt")
    assert repository.requeue(claim.media_id)
    last = events(outbox)[-1]
    assert (last["type"], last["status"], last["attempts"], last["jobId"]) == (
        "media.retrying", "PENDING", 0, None)


def test_without_a_target_no_outbox_row_is_written(kind: str,
                                                   request: pytest.FixtureRequest) -> None:
    repo = make_repository(kind, request, EventRecording(channel="media_status"))
    repo.complete(claimed(repo), [THUMB], {})
    assert repo.outbox().follow(0, 100) == []
    assert repo.outbox().latest_seq() == 0


def test_a_missing_outbox_is_named_at_start_up_while_a_target_is_set(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, EventRecording(targets=("sqs",)), migrate=False)
    plain = make_repository(kind, request, EventRecording(), migrate=False)
    plain.migrate()
    if kind == "postgres":
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute('DROP TABLE "MediaEvent"')
    else:
        import sqlite3

        with sqlite3.connect(request.getfixturevalue("tmp_path") / "media.db") as conn:
            conn.execute('DROP TABLE "MediaEvent"')
    plain.verify_schema()  # no target: the outbox is not needed
    with pytest.raises(SchemaMissingError, match=r'"MediaEvent" does not exist.*migrate'):
        repo.verify_schema()


# --- handing rows out ----------------------------------------------------------------------
def three_events_of_one_media(repository: MediaStore) -> str:
    claim = claimed(repository)
    repository.release(claim, "x")
    again = repository.claim(claim.media_id, 300)
    assert again is not None
    repository.complete(again, [THUMB], {})
    return claim.media_id


def test_rows_are_handed_out_oldest_first_and_once(repository: MediaStore,
                                                   outbox: OutboxStore) -> None:
    media = three_events_of_one_media(repository)
    taken = outbox.lease("webhook", 100, 60)
    assert [e.event_type for e in taken] == ["media.processing", "media.retrying",
                                             "media.processing", "media.ready"]
    assert {e.media_id for e in taken} == {media}
    assert [e.seq for e in taken] == sorted(e.seq for e in taken)
    assert outbox.lease("webhook", 100, 60) == []
    assert len(outbox.lease("sqs", 100, 60)) == 4  # each target has its own rows


def test_a_media_with_a_row_taken_hands_out_nothing_more(repository: MediaStore,
                                                         outbox: OutboxStore) -> None:
    first = claimed(repository)
    head = outbox.lease("webhook", 1, 60)
    assert [e.media_id for e in head] == [first.media_id]
    repository.complete(first, [THUMB], {})  # a later event of the same media
    other = claimed(repository)
    assert [e.media_id for e in outbox.lease("webhook", 100, 60)] == [other.media_id]


def test_delivered_rows_are_gone_and_untried_ones_come_back_at_once(
    repository: MediaStore, outbox: OutboxStore,
) -> None:
    three_events_of_one_media(repository)
    taken = outbox.lease("webhook", 100, 60)
    outbox.settle(Settled(delivered=[taken[0].seq, taken[1].seq],
                          untried=[taken[2].seq, taken[3].seq]))
    again = outbox.lease("webhook", 100, 60)
    assert [e.seq for e in again] == [taken[2].seq, taken[3].seq]
    outbox.settle(Settled(delivered=[e.seq for e in again]))
    assert [e.target for e in outbox.follow(0, 100)] == ["sqs"] * 4


def test_a_row_waiting_for_its_retry_holds_back_its_media_only(
    repository: MediaStore, outbox: OutboxStore,
) -> None:
    three_events_of_one_media(repository)
    taken = outbox.lease("webhook", 100, 60)
    outbox.settle(Settled(retry_after={taken[0].seq: 0.3},
                          untried=[e.seq for e in taken[1:]]))
    other = claimed(repository)
    assert [e.media_id for e in outbox.lease("webhook", 100, 60)] == [other.media_id]
    time.sleep(0.4)
    retried = outbox.lease("webhook", 100, 60)
    assert [e.seq for e in retried] == [e.seq for e in taken]
    assert retried[0].attempts == 1


def test_rows_of_a_dispatcher_that_died_come_back_when_their_lease_runs_out(
    repository: MediaStore, outbox: OutboxStore,
) -> None:
    claimed(repository)
    taken = outbox.lease("webhook", 100, 0.2)  # and never settled
    assert outbox.lease("webhook", 100, 60) == []
    time.sleep(0.3)
    assert [e.seq for e in outbox.lease("webhook", 100, 60)] == [e.seq for e in taken]


def test_concurrent_takers_never_share_a_media(kind: str, repository: MediaStore,
                                               request: pytest.FixtureRequest) -> None:
    for _ in range(20):
        three_events_of_one_media(repository)
    stores = [make_repository(kind, request, EventRecording(targets=BOTH)).outbox()
              for _ in range(4)]
    start = threading.Barrier(len(stores))

    def take(store: OutboxStore) -> list[str]:
        start.wait()
        return [e.media_id for e in store.lease("webhook", 7, 60)]

    with ThreadPoolExecutor(len(stores)) as pool:
        taken = list(pool.map(take, stores))
    medias = [media for batch in taken for media in set(batch)]
    assert len(medias) == len(set(medias))
    assert sum(len(batch) for batch in taken) == 4 * 7


def test_expire_drops_only_rows_past_the_age(repository: MediaStore,
                                             outbox: OutboxStore) -> None:
    old = claimed(repository)
    time.sleep(1.1)
    claimed(repository)
    dropped = outbox.expire(1.0, 100)
    assert {(e.media_id, e.event_type) for e in dropped} == {(old.media_id, "media.processing")}
    assert len(dropped) == 2  # both targets' rows
    assert len(outbox.follow(0, 100)) == 2


def test_depth_counts_the_rows_waiting_per_target(repository: MediaStore,
                                                  outbox: OutboxStore) -> None:
    assert outbox.depth() == {}
    three_events_of_one_media(repository)
    taken = outbox.lease("sqs", 100, 60)
    outbox.settle(Settled(delivered=[e.seq for e in taken[:3]], untried=[taken[3].seq]))
    depth = outbox.depth()
    assert (depth["webhook"].count, depth["sqs"].count) == (4, 1)
    assert depth["webhook"].oldest_age_seconds is not None
    assert depth["webhook"].oldest_age_seconds < 60


def test_follow_starts_after_the_latest_row_even_once_all_are_gone(
    repository: MediaStore, outbox: OutboxStore,
) -> None:
    claimed(repository)
    everything = outbox.follow(0, 100)
    outbox.settle(Settled(delivered=[e.seq for e in everything]))
    latest = outbox.latest_seq()
    assert latest == max(e.seq for e in everything)
    later = claimed(repository)
    assert {e.media_id for e in outbox.follow(latest, 100)} == {later.media_id}


# --- PostgreSQL's NOTIFY ---------------------------------------------------------------------
@pytest.fixture
def listener(postgres_url: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(postgres_url, autocommit=True)
    conn.execute("LISTEN media_status")
    yield conn
    conn.close()


def notifications(conn: psycopg.Connection, count: int, timeout: float = 5) -> list[dict]:
    """Up to `count` notifications, waiting at most `timeout` seconds for them."""
    return [json.loads(n.payload) for n in conn.notifies(timeout=timeout, stop_after=count)]


@pytest.mark.services
def test_each_status_change_notifies_its_id_and_status(
    request: pytest.FixtureRequest, listener: psycopg.Connection,
) -> None:
    repo = make_repository("postgres", request, EventRecording(channel="media_status"))
    claim = claimed(repo)
    repo.release(claim, "x")
    again = repo.claim(claim.media_id, 300)
    assert again is not None
    repo.complete(again, [THUMB], {})
    repo.complete(again, [THUMB], {})  # retried after a lost answer: no second notification
    assert notifications(listener, 4) == [
        {"id": claim.media_id, "status": status}
        for status in ("PROCESSING", "PENDING", "PROCESSING", "READY")]
    assert notifications(listener, 1, timeout=0.5) == []


@pytest.mark.services
def test_a_listener_never_hears_of_a_change_before_it_can_read_it(
    request: pytest.FixtureRequest, listener: psycopg.Connection, postgres_url: str,
) -> None:
    repo = make_repository("postgres", request, EventRecording(targets=("webhook",),
                                                               channel="media_status"))
    ids = [insert(repo) for _ in range(20)]

    def work() -> None:
        for media_id in ids:
            claim = repo.claim(media_id, 300)
            assert claim is not None
            repo.complete(claim, [THUMB], {})

    writer = threading.Thread(target=work)
    writer.start()
    with psycopg.connect(postgres_url, autocommit=True) as reader:
        for note in notifications(listener, 2 * len(ids)):
            row = reader.execute(
                'SELECT m."status"::text, (SELECT array_agg(o."payload"->>\'status\') FROM '
                '"MediaEvent" o WHERE o."mediaId" = m."id") FROM "Media" m WHERE m."id" = %s',
                (note["id"],)).fetchone()
            assert row is not None
            status, outboxed = row
            assert status in {"PROCESSING": ("PROCESSING", "READY"),
                              "READY": ("READY",)}[note["status"]]
            assert note["status"] in outboxed  # its outbox row committed with it
    writer.join()


@pytest.mark.services
def test_no_notify_without_a_channel(request: pytest.FixtureRequest,
                                     listener: psycopg.Connection) -> None:
    repo = make_repository("postgres", request, EventRecording())
    repo.complete(claimed(repo), [THUMB], {})
    assert notifications(listener, 1, timeout=0.5) == []


def test_sqlite_ignores_a_channel(tmp_path: Path) -> None:
    repo = SqliteMediaRepository(tmp_path / "media.db",
                                 events=EventRecording(channel="media_status"))
    repo.migrate()
    assert repo.complete(claimed(repo), [THUMB], {})
