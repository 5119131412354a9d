"""The perceptual hash in the media table, on every adapter: the "phash" column and its
quarters "phash0" to "phash3" written when a row becomes READY, a table without them still
working, and the near-duplicate search (PerceptualIndex) over the quarters' indexes, the
column, and metadata.phash where the column is NULL, every adapter giving the same answers."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from math import comb
from typing import Any

import psycopg
import pytest

from media_worker.engines.phash import PerceptualHash
from media_worker.repository.port import MediaStore
from media_worker.repository.rows import hash_values
from media_worker.similarity import QUARTER_COLUMNS, distance, quarter_probes, quarters
from tests.contract.test_repository_contract import THUMB, insert, make_repository, run_sql

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]
HIGH = "f0e1d2c3b4a59687"  # the top bit set: a negative bigint in the column
HASHES = ('"phash"', *(f'"{column}"' for column in QUARTER_COLUMNS))


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


def columns(kind: str, request: pytest.FixtureRequest, media_id: str) -> tuple[Any, ...]:
    """"phash" and its quarters, as stored."""
    return tuple(query(kind, request, f'SELECT {", ".join(HASHES)} FROM "Media" WHERE '
                                      '"id" = ?', (media_id,))[0])


def drop_the_quarters(kind: str, request: pytest.FixtureRequest) -> None:
    """The table as an API whose model has "phash" but not its quarters has it."""
    for column in QUARTER_COLUMNS:
        run_sql(kind, request, f'DROP INDEX "Media_{column}_phash_idx"')
        run_sql(kind, request, f'ALTER TABLE "Media" DROP COLUMN "{column}"')


def drop_the_columns(kind: str, request: pytest.FixtureRequest) -> None:
    """The table as an API that has not migrated to any of the hash's columns has it."""
    drop_the_quarters(kind, request)
    run_sql(kind, request, 'DROP INDEX "Media_phash_id_idx"')
    run_sql(kind, request, 'ALTER TABLE "Media" DROP COLUMN "phash"')


@pytest.mark.parametrize("kind", KINDS)
def test_complete_writes_the_hash_as_a_signed_bigint_and_its_quarters(
    kind: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    hashed = ready(repo, {"phash": HIGH, "width": 10})
    flat = ready(repo, {"width": 10})  # a flat picture has no hash
    repo.close()
    signed = PerceptualHash.parse(HIGH).signed
    assert signed < 0
    assert columns(kind, request, hashed) == (signed, 0xF0E1, 0xD2C3, 0xB4A5, 0x9687)
    assert columns(kind, request, flat) == (None,) * 5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("missing", ["every hash column", "the quarters"])
def test_a_table_without_the_columns_keeps_working_and_is_warned_of(
    kind: str, missing: str, request: pytest.FixtureRequest,
) -> None:
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    repo.close()
    (drop_the_columns if missing == "every hash column" else drop_the_quarters)(kind, request)
    older = make_repository(kind, request, "Media")
    warnings = older.verify_schema()
    assert len(warnings) == 1
    assert ('"phash" column' if missing == "every hash column" else '"phash0"') in warnings[0]
    assert "migrate" in warnings[0]
    media_id = ready(older, {"phash": HIGH})
    record = older.get(media_id)
    assert record is not None
    assert record.metadata == {"phash": HIGH}
    for max_distance in (0, 8, 20):  # the quarters' probes, and the scan past them
        found = older.perceptual_index().similar(PerceptualHash.parse(HIGH).bits, max_distance)
        assert [m.id for m in found] == [media_id]  # by its metadata, or by its column
    older.migrate()  # adds the columns, last, where Prisma's new table has them
    assert older.verify_schema() == []
    older.close()
    signed = PerceptualHash.parse(HIGH).signed
    before = (None,) * 5 if missing == "every hash column" else (signed, *(None,) * 4)
    assert columns(kind, request, media_id) == before  # READY before them: left as it was
    fresh = make_repository(kind, request, "Media")
    after = ready(fresh, {"phash": HIGH})
    assert columns(kind, request, after)[0] == signed
    found = fresh.perceptual_index().similar(PerceptualHash.parse(HIGH).bits, 8)
    assert {m.id for m in found} == {media_id, after}  # the first without its quarters
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


# --- the candidate set --------------------------------------------------------------------
def flipped(base: int, per_quarter: tuple[int, ...], rng: random.Random) -> int:
    """`base` with per_quarter[i] bits flipped in quarter i (phash0 the most significant)."""
    value = base
    for index, count in enumerate(per_quarter):
        shift = 48 - 16 * index
        for bit in rng.sample(range(16), count):
            value ^= 1 << (shift + bit)
    return value


def spreads(rng: random.Random) -> list[tuple[int, ...]]:
    """Ways to spread 0 to 17 flipped bits over the quarters: as evenly as can be, in every
    rotation (so each quarter is as far from the query's as the distance allows: the bound
    the probes' radius must reach, and one more), all in one quarter, and at random; then
    hashes that equal the query's on a quarter but are far from it."""
    found: set[tuple[int, ...]] = set()
    for total in range(18):
        least, extra = divmod(total, 4)
        even = [least + 1] * extra + [least] * (4 - extra)
        found |= {tuple(even[turn:] + even[:turn]) for turn in range(4)}
        if total <= 16:
            found |= {(total, 0, 0, 0), (0, 0, 0, total)}
        for _ in range(3):
            cuts = sorted(rng.choices(range(total + 1), k=3))
            parts = (cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], total - cuts[2])
            if max(parts) <= 16:
                found.add(parts)
    found |= {(0, 16, 16, 16), (16, 16, 16, 0), (0, 9, 9, 9), (5, 0, 5, 5)}
    return sorted(found)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", ["migrated", "rows before the quarters",
                                   "rows before the column", "a table without the quarters",
                                   "a table without the columns"])
def test_similar_finds_exactly_the_hashes_within_the_distance(
    kind: str, state: str, request: pytest.FixtureRequest,
) -> None:
    """Every distance from 0 to 17 (the quarters' probes up to 11, the scan beyond), against
    hashes at exactly that distance and one more, spread over the quarters every way that
    tests the probes' bound: the answer is what comparing every hash gives."""
    rng = random.Random(16)
    base = PerceptualHash.parse(HIGH).bits
    repo = make_repository(kind, request, "Media")
    repo.migrate()
    repo.close()
    hashes = written(kind, request, [flipped(base, spread, rng) for spread in spreads(rng)])
    ids = sorted(hashes)
    if state == "rows before the quarters":  # READY between the column and its quarters
        nulled(kind, request, ids[::3], QUARTER_COLUMNS)
    if state == "rows before the column":  # READY before "phash": only metadata.phash
        nulled(kind, request, ids[1::3], ("phash", *QUARTER_COLUMNS))
    if state == "a table without the quarters":
        drop_the_quarters(kind, request)
    if state == "a table without the columns":
        drop_the_columns(kind, request)
    repo = make_repository(kind, request, "Media")
    index = repo.perceptual_index()
    for max_distance in range(18):
        expected = sorted((distance(base, value), media_id) for media_id, value in hashes.items()
                          if distance(base, value) <= max_distance)
        found = index.similar(base, max_distance, limit=1000)
        assert [(m.distance, m.id) for m in found] == expected, f"max distance {max_distance}"
    repo.close()


def written(kind: str, request: pytest.FixtureRequest, values: list[int]) -> dict[str, int]:
    """READY rows of these hashes, with the columns `complete` writes (hash_values), in one
    statement: the test is of the search, and a transaction per row would take seconds."""
    rows, params = [], []
    for value in values:
        media_id, metadata = str(uuid.uuid4()), {"phash": f"{value:016x}"}
        rows.append("(?, 'media', ?, 'READY', ?, ?, ?, ?, ?, ?, ?, ?)")
        params += [media_id, f"uploads/{media_id}.jpg", json.dumps(metadata),
                   "2026-01-01 00:00:00", "2026-01-01 00:00:00",
                   *hash_values(metadata).values()]
    run_sql(kind, request, 'INSERT INTO "Media" ("id", "bucket", "key", "status", "metadata", '
            f'"createdAt", "updatedAt", {", ".join(HASHES)}) VALUES {", ".join(rows)}',
            tuple(params))
    return {str(media_id): value for media_id, value in zip(params[::10], values, strict=True)}


def nulled(kind: str, request: pytest.FixtureRequest, ids: list[str],
           names: tuple[str, ...]) -> None:
    """The rows `ids` as rows READY before the columns `names` existed have them."""
    assignments = ", ".join(f'"{name}" = NULL' for name in names)
    run_sql(kind, request, f'UPDATE "Media" SET {assignments} WHERE "id" IN '
            f'({", ".join("?" * len(ids))})', tuple(ids))


def test_the_probes_reach_every_hash_within_the_distance_and_no_further() -> None:
    """What both adapters rely on: a hash within the distance has a probed quarter; a hash
    one bit further may have none (so the radius is no larger than it must be)."""
    rng = random.Random(7)
    base = rng.getrandbits(64)
    for max_distance in range(12):
        probes = quarter_probes(base, max_distance)
        assert probes is not None
        radius = max_distance // 4
        assert all(len(values) == len(set(values)) == sum(
            comb(16, k) for k in range(radius + 1)) for values in probes)
        for spread in spreads(rng):
            value = flipped(base, spread, rng)
            hit = any(quarter in probes[index] for index, quarter in enumerate(quarters(value)))
            if distance(base, value) <= max_distance:
                assert hit, (max_distance, spread)
            assert hit == (min(spread) <= radius)
    assert quarter_probes(base, 12) is None  # radius 3: the scan is cheaper

