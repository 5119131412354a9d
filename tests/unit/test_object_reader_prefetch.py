"""ObjectReader.prefetch: ranges a caller will jump to (a storyboard's keyframes) fetched side
by side into the cache, within the cache's share and MAX_READ_BYTES, never failing the job
itself."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from media_worker.errors import OriginalChangedError
from media_worker.storage.read_ahead import MIB, NONE, ReadAhead
from media_worker.storage.reader import ObjectReader
from tests.fakes import BytesRangeSource

KIB = 1024
POLICY = ReadAhead(first=8 * KIB, most=256 * KIB, cache=1 * MIB)
RANGES = [(index * 100 * KIB, 20 * KIB) for index in range(8)]  # 160 KiB in all


@dataclass
class SlowSource(BytesRangeSource):
    """Each fetch takes `delay` seconds; records how many ran at once, and fails the fetches
    starting at `failing`."""

    delay: float = 0.05
    failing: frozenset[int] = frozenset()
    most_at_once: int = 0
    _running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self, start: int, length: int) -> bytes:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            time.sleep(self.delay)
            if start in self.failing:
                raise OriginalChangedError("the original changed while it was read")
            with self._lock:
                return super().fetch(start, length)
        finally:
            with self._lock:
                self._running -= 1


def opened(source: SlowSource, *, policy: ReadAhead = POLICY,
           limit: int = 1 << 40) -> ObjectReader:
    return ObjectReader(source, name="uploads/v.mp4", max_read_bytes=limit, read_ahead=policy)


def read_at(reader: ObjectReader, start: int, length: int) -> bytes:
    reader.seek(start)
    return reader.read(length)


def test_prefetched_ranges_are_fetched_side_by_side() -> None:
    source = SlowSource(os.urandom(MIB))
    reader = opened(source)

    started = time.monotonic()
    assert reader.prefetch(RANGES) == len(RANGES)

    assert source.most_at_once > 1
    assert time.monotonic() - started < len(RANGES) * source.delay
    reader.close()


def test_reads_of_prefetched_ranges_fetch_nothing_more() -> None:
    source = SlowSource(os.urandom(MIB), delay=0)
    reader = opened(source)
    reader.prefetch(RANGES)
    fetched = len(source.fetches)

    for start, length in RANGES:
        assert read_at(reader, start, length) == source.data[start:start + length]

    assert len(source.fetches) == fetched
    reader.close()


def test_prefetch_takes_only_what_fits_in_half_the_cache() -> None:
    source = SlowSource(os.urandom(4 * MIB), delay=0)
    reader = opened(source)
    ranges = [(index * 300 * KIB, 200 * KIB) for index in range(10)]

    assert reader.prefetch(ranges) == 2  # 512 KiB of room: two ranges of 200 KiB
    assert source.bytes_received == 400 * KIB
    reader.close()


def test_prefetch_stays_within_max_read_bytes() -> None:
    source = SlowSource(os.urandom(MIB), delay=0)
    reader = opened(source, limit=50 * KIB)

    assert reader.prefetch(RANGES) == 2
    assert source.bytes_received <= 50 * KIB
    reader.close()


def test_overlapping_and_cached_parts_are_not_fetched_again() -> None:
    source = SlowSource(os.urandom(MIB), delay=0)
    reader = opened(source)
    read_at(reader, 0, 8 * KIB)  # the first 8 KiB are cached now

    reader.prefetch([(0, 20 * KIB), (10 * KIB, 20 * KIB), (10 * KIB, 20 * KIB)])

    assert source.fetches[1:] == [(8 * KIB, 22 * KIB)]
    reader.close()


def test_a_failed_prefetch_is_left_to_the_read_that_needs_it() -> None:
    source = SlowSource(os.urandom(MIB), delay=0, failing=frozenset({RANGES[1][0]}))
    reader = opened(source)

    assert reader.prefetch(RANGES) == len(RANGES)  # no exception here

    assert read_at(reader, *RANGES[0]) == source.data[:RANGES[0][1]]
    try:
        read_at(reader, *RANGES[1])
    except OriginalChangedError:
        pass
    else:
        raise AssertionError("the read of the range whose prefetch failed should fail")
    reader.close()


def test_without_a_cache_nothing_is_prefetched() -> None:
    source = SlowSource(os.urandom(MIB), delay=0)
    reader = opened(source, policy=NONE)

    assert reader.prefetch(RANGES) == 0
    assert source.fetches == []
    reader.close()


def test_reading_on_through_a_prefetched_range_keeps_the_read_ahead_growing() -> None:
    source = SlowSource(os.urandom(2 * MIB), delay=0)
    reader = opened(source)
    reader.prefetch([(64 * KIB, 16 * KIB)])
    prefetched = len(source.fetches)

    while reader.tell() < 512 * KIB:
        reader.read(8 * KIB)

    after = source.fetches[prefetched:]
    assert after[:3] == [(0, 8 * KIB), (8 * KIB, 16 * KIB), (24 * KIB, 32 * KIB)]
    assert after[3] == (56 * KIB, 8 * KIB)  # up to where the prefetched range begins
    assert after[4] == (80 * KIB, 128 * KIB)  # past it: still doubling, not 8 KiB again
