"""The media repository contract: every adapter (PostgreSQL, SQLite) passes every test."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from media_worker.errors import RepositoryUnavailableError, SchemaMissingError
from media_worker.repository.port import Claim, MediaRepository, NewMedia
from media_worker.repository.postgres import PostgresMediaRepository
from media_worker.repository.sqlite import SqliteMediaRepository
from media_worker.types import MediaStatus, ThumbnailData

THUMB = ThumbnailData(size="small", width=150, height=100, format="webp",
                      mime_type="image/webp", bucket="media", key="thumbnails/x/small.webp",
                      bytes=4211)


def make_repository(kind: str, request: pytest.FixtureRequest, table: str) -> MediaRepository:
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        return PostgresMediaRepository(url, table=table, pool_max=10)
    return SqliteMediaRepository(request.getfixturevalue("tmp_path") / "media.db", table=table)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def repository(request: pytest.FixtureRequest) -> Iterator[MediaRepository]:
    repo = make_repository(request.param, request, "Media")
    repo.migrate()
    yield repo
    repo.close()


def insert(repository: MediaRepository) -> str:
    media_id = str(uuid.uuid4())
    repository.insert(NewMedia(id=media_id, bucket="media", key=f"uploads/{media_id}.jpg",
                               mime_type="image/jpeg", size=1234))
    return media_id


def claimed(repository: MediaRepository, lease: int = 300) -> Claim:
    claim = repository.claim(insert(repository), lease)
    assert claim is not None
    return claim


def test_migrate_twice_is_harmless(repository: MediaRepository) -> None:
    repository.migrate()
    assert repository.count_by_status()[MediaStatus.PENDING] == 0


def test_inserted_row_is_pending_with_no_attempts(repository: MediaRepository) -> None:
    record = repository.get(insert(repository))
    assert record is not None
    assert (record.status, record.attempts, record.size) == (MediaStatus.PENDING, 0, 1234)
    assert record.created_at is not None
    assert record.created_at.tzinfo is UTC


def test_missing_row_is_none(repository: MediaRepository) -> None:
    assert repository.get("no-such-id") is None


def test_claim_moves_pending_to_processing_with_a_lease(repository: MediaRepository) -> None:
    claim = claimed(repository)
    assert claim.attempt == 1
    assert claim.record.status is MediaStatus.PROCESSING
    assert claim.record.lease_until is not None
    assert claim.record.lease_until > datetime.now(UTC)


def test_live_lease_cannot_be_claimed_again(repository: MediaRepository) -> None:
    claim = claimed(repository)
    assert repository.claim(claim.media_id, 300) is None


def test_expired_lease_can_be_claimed_again(repository: MediaRepository) -> None:
    claim = claimed(repository, lease=0)
    time.sleep(0.05)
    again = repository.claim(claim.media_id, 300)
    assert again is not None
    assert again.attempt == 2


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_finished_rows_cannot_be_claimed(repository: MediaRepository, finish: str) -> None:
    claim = claimed(repository)
    if finish == "complete":
        repository.complete(claim, [THUMB], {})
    else:
        repository.fail(claim, "corrupt")
    assert repository.claim(claim.media_id, 300) is None


def test_missing_row_cannot_be_claimed(repository: MediaRepository) -> None:
    assert repository.claim("no-such-id", 300) is None


def test_complete_stores_thumbnails_and_metadata(repository: MediaRepository) -> None:
    claim = claimed(repository)
    repository.release(claim, "earlier failure")
    claim = repository.claim(claim.media_id, 300)
    assert claim is not None
    assert repository.complete(claim, [THUMB], {"width": 4000, "kind": "image"})
    record = repository.get(claim.media_id)
    assert record is not None
    assert record.status is MediaStatus.READY
    assert record.thumbnails == [THUMB]
    assert record.metadata == {"width": 4000, "kind": "image"}
    assert record.error is None
    assert record.lease_until is None
    assert record.processed_at is not None


def test_stale_claim_cannot_complete(repository: MediaRepository) -> None:
    stale = claimed(repository, lease=0)
    time.sleep(0.05)
    fresh = repository.claim(stale.media_id, 300)
    assert fresh is not None
    assert not repository.complete(stale, [THUMB], {})
    record = repository.get(stale.media_id)
    assert record is not None
    assert record.status is MediaStatus.PROCESSING
    assert record.thumbnails is None


def test_fail_records_the_error(repository: MediaRepository) -> None:
    claim = claimed(repository)
    assert repository.fail(claim, "unsupported media type: PDF")
    record = repository.get(claim.media_id)
    assert record is not None
    assert (record.status, record.error) == (MediaStatus.FAILED, "unsupported media type: PDF")
    assert record.processed_at is not None


def test_release_returns_the_row_to_pending_for_another_claim(
    repository: MediaRepository,
) -> None:
    claim = claimed(repository)
    assert repository.release(claim, "storage unreachable")
    record = repository.get(claim.media_id)
    assert record is not None
    assert (record.status, record.error, record.attempts) == (
        MediaStatus.PENDING, "storage unreachable", 1)
    again = repository.claim(claim.media_id, 300)
    assert again is not None
    assert again.attempt == 2


def test_released_claim_cannot_write_afterwards(repository: MediaRepository) -> None:
    claim = claimed(repository)
    repository.release(claim, "shutdown")
    assert not repository.complete(claim, [THUMB], {})
    assert not repository.fail(claim, "late")


def test_extend_lease_pushes_the_lease_forward(repository: MediaRepository) -> None:
    claim = claimed(repository, lease=1)
    assert repository.extend_lease(claim, 600)
    record = repository.get(claim.media_id)
    assert record is not None
    assert record.lease_until is not None
    assert (record.lease_until - datetime.now(UTC)).total_seconds() > 500


def test_extend_lease_is_fenced(repository: MediaRepository) -> None:
    stale = claimed(repository, lease=0)
    time.sleep(0.05)
    assert repository.claim(stale.media_id, 300) is not None
    assert not repository.extend_lease(stale, 600)


def test_count_by_status_lists_every_status(repository: MediaRepository) -> None:
    insert(repository)
    repository.fail(claimed(repository), "x")
    counts = repository.count_by_status()
    assert counts == {MediaStatus.PENDING: 1, MediaStatus.PROCESSING: 0,
                      MediaStatus.READY: 0, MediaStatus.FAILED: 1}


def test_list_filters_by_status_newest_first(repository: MediaRepository) -> None:
    first = insert(repository)
    time.sleep(0.01)
    second = insert(repository)
    repository.fail(claimed(repository), "x")
    assert [r.id for r in repository.list(MediaStatus.PENDING)] == [second, first]
    assert len(repository.list(limit=2)) == 2


def test_concurrent_claims_have_exactly_one_winner(repository: MediaRepository) -> None:
    media_id = insert(repository)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: repository.claim(media_id, 300), range(8)))
    assert sum(result is not None for result in results) == 1


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_custom_table_name_works(kind: str, request: pytest.FixtureRequest) -> None:
    repo = make_repository(kind, request, "media_items")
    repo.migrate()
    claim = claimed(repo)
    assert repo.complete(claim, [THUMB], {})
    assert repo.count_by_status()[MediaStatus.READY] == 1
    repo.close()


def test_invalid_table_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        SqliteMediaRepository(tmp_path / "x.db", table='Media"; DROP TABLE x; --')


@pytest.mark.services
def test_postgres_schema_has_prismas_names(postgres_url: str) -> None:
    repo = PostgresMediaRepository(postgres_url)
    repo.migrate()
    repo.close()
    with psycopg.connect(postgres_url) as conn:
        columns = dict(conn.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_name = 'Media'").fetchall())
    assert columns == {
        "id": "text", "bucket": "text", "key": "text", "mimeType": "text", "size": "int8",
        "status": "MediaStatus", "thumbnails": "jsonb", "metadata": "jsonb", "error": "text",
        "attempts": "int4", "leaseUntil": "timestamp", "processedAt": "timestamp",
        "createdAt": "timestamp", "updatedAt": "timestamp", "phash": "int8",
        "phash0": "int4", "phash1": "int4", "phash2": "int4", "phash3": "int4",
    }


@pytest.mark.services
def test_unreachable_postgres_raises_without_the_password() -> None:
    repo = PostgresMediaRepository("postgresql://app:s3cret-xyz@127.0.0.1:1/app",
                                   connect_timeout=1, retry_attempts=2)
    started = time.monotonic()
    with pytest.raises(RepositoryUnavailableError) as caught:
        repo.get("anything")
    repo.close()
    assert "s3cret-xyz" not in str(caught.value)
    assert time.monotonic() - started < 15


def test_a_retried_write_of_the_same_claim_still_succeeds(repository: MediaRepository) -> None:
    # A write whose reply was lost is retried; the row is already in the target state.
    claim = claimed(repository)
    assert repository.complete(claim, [THUMB], {})
    assert repository.complete(claim, [THUMB], {})
    other = claimed(repository)
    assert repository.fail(other, "corrupt")
    assert repository.fail(other, "corrupt")
    assert not repository.complete(other, [THUMB], {})


def test_list_filters_by_update_window(repository: MediaRepository) -> None:
    old = insert(repository)
    time.sleep(0.05)
    middle = datetime.now(UTC)
    new = insert(repository)
    assert [r.id for r in repository.list(updated_after=middle)] == [new]
    assert [r.id for r in repository.list(updated_before=middle)] == [old]


def test_requeue_turns_a_failed_row_into_a_fresh_pending_one(
    repository: MediaRepository,
) -> None:
    claim = claimed(repository)
    repository.fail(claim, "corrupt")
    assert repository.requeue(claim.media_id)
    record = repository.get(claim.media_id)
    assert record is not None
    assert (record.status, record.attempts, record.error) == (MediaStatus.PENDING, 0, None)


def test_requeue_leaves_rows_that_are_not_failed(repository: MediaRepository) -> None:
    assert not repository.requeue(insert(repository))
    assert not repository.requeue("no-such-id")


def test_oldest_created_at_is_that_of_the_oldest_row_of_a_status(
    repository: MediaRepository,
) -> None:
    assert repository.oldest_created_at(MediaStatus.PENDING) is None
    first = insert(repository)
    time.sleep(0.01)
    insert(repository)
    oldest = repository.oldest_created_at(MediaStatus.PENDING)
    record = repository.get(first)
    assert record is not None
    assert oldest == record.created_at


def run_sql(kind: str, request: pytest.FixtureRequest, statement: str,
            params: tuple[object, ...] = ()) -> None:
    """Write to the table as another program (the API) would, beside the adapter."""
    if kind == "postgres":
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), params)
        return
    with sqlite3.connect(request.getfixturevalue("tmp_path") / "media.db") as conn:
        conn.execute(statement, params)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_complete_merges_its_metadata_into_the_apis_own_keys(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    media_id = insert(repo)
    api_keys = {"originalName": "été photo.jpg", "uploadedBy": "user-7", "width": 1}
    run_sql(kind, request, 'UPDATE "Media" SET "metadata" = ? WHERE "id" = ?',
            (json.dumps(api_keys), media_id))
    claim = repo.claim(media_id, 300)
    assert claim is not None
    assert repo.complete(claim, [THUMB], {"width": 4000, "kind": "image", "audio": None})
    record = repo.get(media_id)
    repo.close()
    assert record is not None
    assert record.metadata == {"originalName": "été photo.jpg", "uploadedBy": "user-7",
                               "width": 4000, "kind": "image", "audio": None}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_complete_replaces_metadata_that_is_not_an_object(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    media_id = insert(repo)
    run_sql(kind, request, 'UPDATE "Media" SET "metadata" = ? WHERE "id" = ?',
            (json.dumps(["not", "an", "object"]), media_id))
    claim = repo.claim(media_id, 300)
    assert claim is not None
    assert repo.complete(claim, [THUMB], {"kind": "image"})
    record = repo.get(media_id)
    repo.close()
    assert record is not None
    assert record.metadata == {"kind": "image"}


def _in_kolkata(postgres_url: str) -> None:
    """The database's clock shows India's time (UTC+05:30), as a server there would."""
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET TimeZone = 'Asia/Kolkata'").format(
            sql.Identifier(name)))


def _seconds_from_now(moment: datetime | None) -> float:
    assert moment is not None
    return abs((datetime.now(UTC) - moment).total_seconds())


@pytest.mark.services
@pytest.mark.parametrize("column_type", ["TIMESTAMP(3)", "TIMESTAMPTZ(3)"])
def test_timestamps_are_utc_whatever_the_servers_time_zone(
    postgres_url: str, column_type: str,
) -> None:
    _in_kolkata(postgres_url)
    repo = PostgresMediaRepository(postgres_url)
    repo.migrate()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for column in ("createdAt", "updatedAt", "leaseUntil", "processedAt"):
            conn.execute(sql.SQL('ALTER TABLE "Media" ALTER COLUMN {} TYPE ' + column_type)
                         .format(sql.Identifier(column)))
    claim = claimed(repo)
    assert repo.complete(claim, [THUMB], {})
    record = repo.get(claim.media_id)
    oldest = repo.oldest_created_at(MediaStatus.READY)
    repo.close()
    assert record is not None
    for moment in (record.created_at, record.updated_at, record.processed_at, oldest):
        assert _seconds_from_now(moment) < 60


@pytest.mark.services
def test_rows_read_by_a_plain_client_hold_utc(postgres_url: str) -> None:
    """What Prisma reads back: timestamp(3) columns holding UTC wall-clock time."""
    _in_kolkata(postgres_url)
    repo = PostgresMediaRepository(postgres_url)
    repo.migrate()
    media_id = insert(repo)
    repo.close()
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute('SELECT "createdAt", "updatedAt" FROM "Media" WHERE "id" = %s',
                           (media_id,)).fetchone()
    assert row is not None
    for naive in row:
        assert _seconds_from_now(naive.replace(tzinfo=UTC)) < 60


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_one_process_at_a_time_holds_a_lead(kind: str, request: pytest.FixtureRequest) -> None:
    first, second = (make_repository(kind, request, "Media") for _ in range(2))
    first.migrate()
    lead = first.try_lead("sweep")
    assert lead is not None
    assert lead.held()
    assert second.try_lead("sweep") is None
    assert second.try_lead("another-lock") is not None
    lead.release()
    taken_over = second.try_lead("sweep")
    assert taken_over is not None
    taken_over.release()
    first.close()
    second.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_a_missing_table_is_named_at_start_up(kind: str, request: pytest.FixtureRequest) -> None:
    repo = make_repository(kind, request, "Media")
    with pytest.raises(SchemaMissingError, match=r'"Media" does not exist.*migrate'):
        repo.verify_schema()
    repo.migrate()
    repo.verify_schema()
    repo.close()
