"""Near-duplicate search over the perceptual hashes of READY rows: the arithmetic shared by
`media-worker similar` and `duplicates` and the repositories that answer them (the search
itself is repository/port.py's PerceptualIndex; docs/media.md, "Perceptual hashes").

A row's hash is its "phash" column, or its `metadata.phash` where the column is NULL: rows
that became READY before the column existed (or on a table that has not gained it yet) are
searched as well, without a backfill step. A row READY before the worker computed hashes at
all has neither, and is found only once it is processed again.

**Quarters** make `similar` a few index lookups instead of a scan (multi-index hashing,
Norouzi, Punjani and Fleet, 2012): the 64 bits are also stored as four 16-bit columns,
"phash0" (the most significant) to "phash3", each indexed with the hash. Two hashes at most
`d` bits apart differ in at most `d // 4` bits of one quarter at least (were every quarter
`d // 4 + 1` bits apart, the hashes would be `4 * (d // 4 + 1) > d` apart), so every hash
within `d` has a quarter equal to one of the query's quarter's values within `d // 4` bits:
`quarter_probes` lists them (137 per quarter at the default 8), the index finds the rows
holding them (about 1 in 480 of random hashes per quarter), and the distance is checked on
those alone. Past a radius of 2 (a distance of 12 or more) the probes and candidates cost
more than the scan computing every distance, which is then what runs.
"""

from __future__ import annotations

from itertools import combinations

BITS = 64
_MASK = (1 << BITS) - 1
QUARTERS = 4
QUARTER_BITS = BITS // QUARTERS
QUARTER_COLUMNS = tuple(f"phash{index}" for index in range(QUARTERS))
# Largest radius a quarter is probed with: 1 + 16 + 120 values at 2; at 3, 697 per quarter
# found about 4% of 100,000 random hashes and took longer than the scan (docs/performance.md).
MAX_PROBE_RADIUS = 2


def hash_bits(value: str | int) -> int:
    """The unsigned 64 bits of a stored hash: 16 hex digits (metadata) or a signed bigint
    (the column). As engines.phash.PerceptualHash.parse, without loading the engine."""
    return int(value, 16) & _MASK if isinstance(value, str) else value & _MASK


def distance(a: int, b: int) -> int:
    """Hamming distance of two unsigned hashes."""
    return (a ^ b).bit_count()


def quarters(bits: int) -> tuple[int, ...]:
    """The four 16-bit quarters of unsigned 64 bits, the most significant first: the values
    of "phash0" to "phash3" (0 to 65535)."""
    return tuple((bits >> (BITS - QUARTER_BITS * (index + 1))) & 0xFFFF
                 for index in range(QUARTERS))


def quarter_probes(bits: int, max_distance: int) -> list[list[int]] | None:
    """For each quarter, every value within `max_distance // 4` bits of `bits`' own: a hash
    within `max_distance` of `bits` has at least one quarter among them (module docstring).
    None when the radius is over MAX_PROBE_RADIUS: computing every distance is cheaper."""
    radius = max_distance // QUARTERS
    if radius > MAX_PROBE_RADIUS:
        return None
    flips = [sum(1 << bit for bit in chosen) for count in range(radius + 1)
             for chosen in combinations(range(QUARTER_BITS), count)]
    return [[value ^ flip for flip in flips] for value in quarters(bits)]
