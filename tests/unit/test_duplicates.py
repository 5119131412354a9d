"""Near-duplicate groups by multi-index hashing: the same groups as comparing every pair."""

from __future__ import annotations

import random

import pytest

from media_worker.duplicates import chunks, near_duplicate_groups


def every_pair_groups(hashes: list[tuple[str, int]], max_distance: int) -> list[list[str]]:
    """Connected components of "within max_distance", the slow way."""
    parent = list(range(len(hashes)))

    def find(item: int) -> int:
        while parent[item] != item:
            item = parent[item]
        return item

    for i, (_a, first) in enumerate(hashes):
        for j in range(i + 1, len(hashes)):
            if (first ^ hashes[j][1]).bit_count() <= max_distance:
                parent[find(i)] = find(j)
    groups: dict[int, list[str]] = {}
    for i, (media_id, _value) in enumerate(hashes):
        groups.setdefault(find(i), []).append(media_id)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def library(seed: int) -> list[tuple[str, int]]:
    """Random hashes, every tenth with a few copies a few bits away (up to 7)."""
    rng = random.Random(seed)
    hashes = []
    for i in range(600):
        value = rng.getrandbits(64)
        hashes.append((f"m{i:04d}", value))
        for k in range(rng.randint(1, 3) if i % 10 == 0 else 0):
            copy = value
            for _ in range(rng.randint(0, 7)):
                copy ^= 1 << rng.randrange(64)
            hashes.append((f"m{i:04d}-{k}", copy))
    return hashes


@pytest.mark.parametrize("max_distance", [0, 3, 4, 6])
def test_the_groups_are_those_of_every_pair(max_distance: int) -> None:
    hashes = library(max_distance)
    groups = near_duplicate_groups(hashes, max_distance)
    assert sorted(sorted(m.id for m in g) for g in groups) == every_pair_groups(
        hashes, max_distance)
    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)


def test_chunks_cover_the_64_bits_once() -> None:
    for max_distance in range(11):
        parts = chunks(max_distance)
        assert len(parts) == max_distance + 1
        masks = [((1 << width) - 1) << shift for shift, width in parts]
        assert sum(masks) == (1 << 64) - 1
        assert max(w for _s, w in parts) - min(w for _s, w in parts) <= 1


def test_no_hashes_no_groups() -> None:
    assert near_duplicate_groups([], 4) == []
