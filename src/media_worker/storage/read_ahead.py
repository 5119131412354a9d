"""What an ObjectReader fetches beyond a read, and which fetched bytes it keeps.

A demuxer reads in small pieces (PyAV asks for 32 KiB at a time) but jumps: the `moov` index
of an MP4 may sit at the end, the packets near the start, and each jump costs a round trip to
the store. So a miss fetches a window of bytes from where the read starts: a small one after a
jump (most jumps read a header and jump again), doubling while the reads run on sequentially
(a demuxer walking packets or an index) up to a cap. Fetched windows stay in a small
least-recently-used cache of segments, so going back to a part read a moment ago — the index,
then the packets, then the index again — costs nothing.

Segments start where the read that missed started rather than on fixed block boundaries: a
jump to the last 8 bytes of an object fetches 8 bytes, not a whole block, and a fetch stops
where an already cached segment begins, so no byte is fetched twice while it is cached.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ReadAhead:
    """Bytes fetched on a miss: `first` after a jump, doubling per sequential miss up to
    `most`; `cache` bytes of recent segments kept. All zero: fetch exactly what is read and
    keep nothing (a local file, where the kernel's page cache and read-ahead do this job)."""

    first: int = MIB
    most: int = 8 * MIB
    cache: int = 16 * MIB

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.most:
            raise ValueError("ReadAhead needs 0 <= first <= most")
        if self.most > self.cache:
            raise ValueError("ReadAhead.most must fit in the cache: bytes read ahead and not "
                             "kept would be fetched for nothing")


NONE = ReadAhead(first=0, most=0, cache=0)


class Window:
    """How far the next miss reads ahead: grows while misses follow one another."""

    def __init__(self, policy: ReadAhead) -> None:
        self._policy = policy
        self._size = policy.first
        self._next_sequential: int | None = None

    def size_at(self, position: int) -> int:
        """The window for a miss at `position`; doubles when it starts where the previous
        fetch ended, else starts again at `first`."""
        if position == self._next_sequential:
            self._size = min(max(self._size * 2, self._policy.first), self._policy.most)
        else:
            self._size = self._policy.first
        return self._size

    def fetched(self, start: int, length: int) -> None:
        self._next_sequential = start + length

    def read_cached(self, start: int, end: int) -> None:
        """The cache served [start, end): when that went on where the reading was (the end of
        the last fetch or of such a read), a miss at `end` still reads in order. Without this,
        reading on through a prefetched segment started the window small again at its end, as
        if the demuxer had jumped there."""
        if start == self._next_sequential:
            self._next_sequential = end


class SegmentCache:
    """Recently fetched byte ranges of one object, at most `capacity` bytes in all, the least
    recently used dropped first. A segment larger than the whole capacity is not kept."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._segments: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    @property
    def capacity(self) -> int:
        return self._capacity

    def find(self, position: int) -> memoryview | None:
        """The cached bytes from `position` to the end of the segment holding it."""
        for start, data in self._segments.items():
            if start <= position < start + len(data):
                self._segments.move_to_end(start)
                return memoryview(data)[position - start:]
        return None

    def next_start(self, position: int) -> int | None:
        """Where the first cached segment after `position` begins (a fetch stops there)."""
        later = [start for start in self._segments if start > position]
        return min(later) if later else None

    def add(self, start: int, data: bytes) -> None:
        if not data or len(data) > self._capacity:
            return
        self._segments[start] = data
        self._bytes += len(data)
        while self._bytes > self._capacity:
            _, dropped = self._segments.popitem(last=False)
            self._bytes -= len(dropped)

    def clear(self) -> None:
        self._segments.clear()
        self._bytes = 0
