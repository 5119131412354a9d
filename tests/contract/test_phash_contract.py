"""The perceptual hash in the media table, on every adapter: the "phash" column written when a
row becomes READY, a table without it still working, and the near-duplicate search
(PerceptualIndex) over the column and over metadata.phash where the column is NULL."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import psycopg
import pytest

from media_worker.engines.phash import PerceptualHash
from media_worker.repository.port import MediaStore
from tests.contract.test_repository_contract import THUMB, insert, make_repository, run_sql

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]
HIGH = "f0e1d2c3b4a59687"  # the top bit set: a negative bigint in the column


def query(kind: str, request: pytest.FixtureRequest, statement: str,
          params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the table as another program (the API) would."""
    if kind == "postgres":
        with psycopg.connect(request.getfixturevalue("postgres_url")) as conn:
            return conn.execute(statement.replace("?", "%s"), params).fetchall()
    with sqlite3.connect(request.getfixturevalue("tmp_path") / "media.db") as conn:
        return conn.execute(statement, params).fetchall()


def ready(repo: MediaStore, metadata: dict[str, Any]) -> str:
    claim = repo.claim(insert(repo), 300)
    assert claim is not None
    assert repo.complete(claim, [THUMB], metadata)
    return claim.media_id


def column(kind: str, request: pytest.FixtureRequest, media_id: str) -> object:
    return query(kind, request, 'SELECT "phash" FROM "Media" WHERE "id" = ?', (media_id,))[0][0]


def drop_the_column(kind: str, request: pytest.FixtureRequest) -> None:
    """The table as an API that has not migrated yet has it."""
    run_sql(kind, request, 'DROP INDEX "Media_phash_id_idx"')
    run_sql(kind, request, 'ALTER TABLE "Media" DROP COLUMN "phash"')


@pytest.mark.parametrize("kind", KINDS)
def test_complete_writes_the_hash_as_a_signed_bigint(kind: str,
                                                     request: pytest.FixtureRequest) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    hashed = ready(repo, {"phash": HIGH, "width": 10})
    flat = ready(repo, {"width": 10})  # a flat picture has no hash
    repo.close()
    assert column(kind, request, hashed) == PerceptualHash.parse(HIGH).signed < 0
    assert column(kind, request, flat) is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_table_without_the_column_keeps_working_and_is_warned_of(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    repo.close()
    drop_the_column(kind, request)
    older = make_repository(kind, request, "Media")
    warnings = older.verify_schema()
    assert len(warnings) == 1
    assert '"phash"' in warnings[0]
    assert "migrate" in warnings[0]
    media_id = ready(older, {"phash": HIGH})
    record = older.get(media_id)
    assert record is not None
    assert record.metadata == {"phash": HIGH}
    found = older.perceptual_index().similar(PerceptualHash.parse(HIGH).bits, 0)
    assert [m.id for m in found] == [media_id]  # searched by its metadata
    older.migrate()  # adds the column, last, where Prisma's new table has it
    assert older.verify_schema() == []
    older.close()
    assert column(kind, request, media_id) is None  # READY before the column: left as it was
    fresh = make_repository(kind, request, "Media")
    assert column(kind, request, ready(fresh, {"phash": HIGH})) == PerceptualHash.parse(
        HIGH).signed
    fresh.close()


@pytest.mark.parametrize("kind", KINDS)
def test_similar_is_nearest_first_within_the_distance(kind: str,
                                                      request: pytest.FixtureRequest) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    base = PerceptualHash.parse(HIGH).bits
    ids = {flips: ready(repo, {"phash": f"{base ^ ((1 << flips) - 1):016x}",
                               "width": 100 + flips, "height": 50})
           for flips in (0, 1, 3, 9, 30)}
    before_the_column = insert(repo)  # READY with metadata.phash but a NULL column
    run_sql(kind, request, "UPDATE \"Media\" SET \"status\" = 'READY', \"metadata\" = ? "
            'WHERE "id" = ?', (json.dumps({"phash": f"{base ^ 0b11:016x}"}), before_the_column))
    pending = insert(repo)
    run_sql(kind, request, 'UPDATE "Media" SET "metadata" = ? WHERE "id" = ?',
            (json.dumps({"phash": HIGH}), pending))
    broken = insert(repo)  # whatever the API wrote there never fails the search
    run_sql(kind, request, "UPDATE \"Media\" SET \"status\" = 'READY', \"metadata\" = ? "
            'WHERE "id" = ?', (json.dumps({"phash": "not a hash"}), broken))
    index = repo.perceptual_index()
    found = index.similar(base, 8, exclude=ids[0])
    assert [(m.id, m.distance) for m in found] == [
        (ids[1], 1), (before_the_column, 2), (ids[3], 3)]
    assert (found[0].key, found[0].width, found[0].height) == (
        f"uploads/{ids[1]}.jpg", 101, 50)
    assert [m.id for m in index.similar(base, 8, exclude=ids[0], limit=1)] == [ids[1]]
    assert [m.distance for m in index.similar(base, 64)] == [0, 1, 2, 3, 9, 30]
    assert index.count() == 6
    batches = list(index.batches(4))
    assert [len(b) for b in batches] == [4, 2]
    pairs = [pair for batch in batches for pair in batch]
    assert sorted(pairs) == pairs
    assert dict(pairs)[before_the_column] == base ^ 0b11
    repo.close()
