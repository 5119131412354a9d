"""Near-duplicate search over the perceptual hashes of READY rows: what `media-worker similar`
and `duplicates` ask of a repository (docs/media.md, "Perceptual hashes").

A row's hash is its "phash" column, or its `metadata.phash` where the column is NULL: rows
that became READY before the column existed (or on a table that has not gained it yet) are
searched as well, without a backfill step. A row READY before the worker computed hashes at
all has neither, and is found only once it is processed again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

BITS = 64
_MASK = (1 << BITS) - 1


@dataclass(frozen=True)
class SimilarMedia:
    """One READY row near a hash: `distance` bits of 64 differ."""

    id: str
    distance: int
    key: str
    width: int | None = None
    height: int | None = None


class PerceptualIndex(Protocol):
    """The hashes of one media table. Methods raise RepositoryUnavailableError when the
    database is down."""

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        """READY rows whose hash is within `max_distance` of `bits` (unsigned), nearest first
        (then by id), without `exclude`."""
        ...

    def count(self) -> int:
        """How many READY rows have a hash (what `batches` walks)."""
        ...

    def batches(self, size: int) -> Iterator[list[tuple[str, int]]]:
        """(id, unsigned hash) of every READY row with a hash, `size` at a time, by id."""
        ...


def hash_bits(value: str | int) -> int:
    """The unsigned 64 bits of a stored hash: 16 hex digits (metadata) or a signed bigint
    (the column). As engines.phash.PerceptualHash.parse, without loading the engine."""
    return int(value, 16) & _MASK if isinstance(value, str) else value & _MASK


def distance(a: int, b: int) -> int:
    """Hamming distance of two unsigned hashes."""
    return (a ^ b).bit_count()
