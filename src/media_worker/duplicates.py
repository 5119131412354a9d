"""Near-duplicate groups of a whole library, without comparing every pair.

Multi-index hashing by the pigeonhole principle: split the 64 bits into max_distance + 1
chunks; two hashes within max_distance bits differ in at most max_distance chunks, so they
agree exactly on at least one. Hashes are therefore compared only with those sharing a chunk
value (sorted by each chunk in turn, numpy compares the neighbours of each run), and every
pair within the distance is found, none missed. Equal hashes are folded into one first.

Groups are the connected components of "within max_distance": A and C share a group when
B is near both, even if A and C are farther apart (so each member's distance to its group's
first id is reported, and may exceed the bound). Work grows with the pairs sharing a chunk:
about chunks × n² / 2^(64 / chunks) for hashes spread over the 64 bits, so it grows quickly
with max_distance (shorter chunks), which is why the command bounds it.

Written here rather than taken from PyPI: pybktree and pymih are unmaintained and pure
Python; faiss-cpu (IndexBinaryMultiHash) is well kept but a large native dependency for one
command; the filter above is a few numpy lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from media_worker.similarity import BITS, distance

Steps = Callable[[Iterable[int]], Iterable[int]]


@dataclass(frozen=True)
class Member:
    """One media of a group: its Hamming distance to the group's first member."""

    id: str
    distance: int


def chunks(max_distance: int) -> list[tuple[int, int]]:
    """(shift, width) of max_distance + 1 chunks covering the 64 bits, as even as can be."""
    count = max_distance + 1
    if not 1 <= count <= BITS:
        raise ValueError(f"max distance must be 0 to {BITS - 1}, not {max_distance}")
    widths = [BITS // count + (1 if i < BITS % count else 0) for i in range(count)]
    shifts = [sum(widths[i + 1:]) for i in range(count)]
    return list(zip(shifts, widths, strict=True))


def near_duplicate_groups(hashes: Sequence[tuple[str, int]], max_distance: int, *,
                          steps: Steps = iter) -> list[list[Member]]:
    """Groups (two media or more) of `hashes` (id, unsigned 64 bits) linked by distances of
    at most `max_distance`; largest first, members by id. `steps` wraps the passes (one per
    chunk), for a progress bar."""
    parts = chunks(max_distance)
    if not hashes:
        return []
    bits = np.fromiter((value for _id, value in hashes), dtype=np.uint64, count=len(hashes))
    values, inverse = np.unique(bits, return_inverse=True)
    parent = list(range(len(values)))
    for step in steps(range(len(parts))):
        shift, width = parts[step]
        for a, b in _close_pairs(values, shift, width, max_distance):
            _union(parent, int(a), int(b))
    return _groups(hashes, inverse.reshape(-1), parent)


def _close_pairs(values: np.ndarray, shift: int, width: int,
                 max_distance: int) -> Iterable[tuple[int, int]]:
    """Index pairs of `values` that agree on one chunk and are within the distance."""
    keys = (values >> np.uint64(shift)) & np.uint64((1 << width) - 1)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    offset = 1
    while offset < len(values):
        same = ordered[offset:] == ordered[:-offset]
        if not same.any():  # no run of equal chunks is longer than `offset`
            return
        first, second = order[:-offset][same], order[offset:][same]
        near = _popcount(values[first] ^ values[second]) <= max_distance
        yield from zip(first[near].tolist(), second[near].tolist(), strict=True)
        offset += 1


def _groups(hashes: Sequence[tuple[str, int]], inverse: np.ndarray,
            parent: list[int]) -> list[list[Member]]:
    by_root: dict[int, list[tuple[str, int]]] = {}
    for (media_id, value), unique in zip(hashes, inverse.tolist(), strict=True):
        by_root.setdefault(_find(parent, unique), []).append((media_id, value))
    groups = []
    for members in by_root.values():
        if len(members) < 2:
            continue
        members.sort()
        first = members[0][1]
        groups.append([Member(media_id, distance(first, value)) for media_id, value in members])
    groups.sort(key=lambda group: (-len(group), group[0].id))
    return groups


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy's bitwise_count where it has one, numpy >= 2)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)


def _find(parent: list[int], item: int) -> int:
    while parent[item] != item:
        parent[item] = parent[parent[item]]  # path halving
        item = parent[item]
    return item


def _union(parent: list[int], a: int, b: int) -> None:
    root_a, root_b = _find(parent, a), _find(parent, b)
    if root_a != root_b:
        parent[max(root_a, root_b)] = min(root_a, root_b)
