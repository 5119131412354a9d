"""A read-only, seekable file over a stored object that fetches only the parts that are read.

Decoders take a file: PyAV's file-object input (`av.open(reader)`), Pillow's `Image.open`,
a `pyvips.SourceCustom` whose callbacks read and seek it. An ObjectReader is an `io.RawIOBase`
over a RangeSource (an S3 object read in ranges, a local file), so the cost of a video job is
its container index and the packets around one frame, not the size of the original: no
download, no temporary file.

Every byte the source receives counts against `max_read_bytes` (MAX_READ_BYTES). A fetch that
would pass it is refused before it is sent, and the count runs for the reader's whole life, so
an original built to make a decoder read all of it (or to jump back and forth until the cache
gives up) fails with a reason instead of costing its size.

A caller that knows where its next jumps go (a storyboard: the keyframe of each tile, from the
container's index) can `prefetch` those ranges: they are fetched side by side into the cache,
so a hundred jumps cost the round trips of a few rather than of a hundred.

Own code rather than a library: fsspec's caches fetch fixed blocks, one request each, and come
with an S3 stack of their own (s3fs, aiobotocore) beside the boto3 client the worker shares;
smart_open restarts one open-ended GET on every seek. Neither can refuse a fetch before it is
sent, nor ask the store to confirm the object is still the one first read.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, Protocol

from media_worker.errors import ReadLimitExceededError, TruncatedOriginalError
from media_worker.storage.read_ahead import ReadAhead, SegmentCache, Window

DEFAULT_READ_AHEAD = ReadAhead()
PREFETCH_WORKERS: Final = 8  # ranges fetched side by side
PREFETCH_CACHE_SHARE: Final = 2  # a prefetch fills at most 1/2 of the cache, so it is still
# there when read (and what the demuxer reads between keeps room)


class RangeSource(Protocol):
    """Where an ObjectReader's bytes come from. `size` and `etag` are those of the version
    read first; a source that finds another version later raises OriginalChangedError.
    `fetch` may be called from several threads at once (`ObjectReader.prefetch`)."""

    @property
    def size(self) -> int: ...

    @property
    def etag(self) -> str: ...

    @property
    def bytes_received(self) -> int:
        """Every byte received so far, including a range cut short and fetched again."""
        ...

    def fetch(self, start: int, length: int) -> bytes:
        """Exactly `length` bytes from `start` (the range lies within `size`): an object that
        has fewer raises TruncatedOriginalError, one that changed OriginalChangedError."""
        ...

    def close(self) -> None: ...


class ObjectReader(io.RawIOBase):
    """A binary file over one object version: read, readinto, seek, tell, close, `with`.

    `head` is the object's first bytes when the opener had to fetch some to learn the size
    and ETag (they are cached, not fetched again). Not thread-safe: one job reads it (its
    prefetches fetch on threads of their own, and return before the next read).
    """

    def __init__(self, source: RangeSource, *, name: str, max_read_bytes: int,
                 read_ahead: ReadAhead = DEFAULT_READ_AHEAD, head: bytes = b"") -> None:
        super().__init__()
        if max_read_bytes < 1:
            raise ValueError("max_read_bytes must be at least 1")
        self._source = source
        self._name = name
        self._limit = max_read_bytes
        self._cache = SegmentCache(read_ahead.cache)
        self._window = Window(read_ahead)
        self._position = 0
        self._threads: ThreadPoolExecutor | None = None
        if head:
            self._cache.add(0, head)
            self._window.fetched(0, len(head))

    def __repr__(self) -> str:
        return f"ObjectReader(name={self._name!r}, size={self.size})"

    # --- what callers ask -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The object's key: PyAV hands it to FFmpeg, whose probing weighs the extension."""
        return self._name

    @property
    def size(self) -> int:
        return self._source.size

    @property
    def etag(self) -> str:
        """The version read (S3's ETag; for a local file, its inode, size and mtime)."""
        return self._source.etag

    @property
    def bytes_fetched(self) -> int:
        """Bytes received from the store so far: what this reader cost in transfer."""
        return self._source.bytes_received

    # --- io.RawIOBase ---------------------------------------------------------------------
    def readable(self) -> bool:
        self._check_open()
        return True

    def seekable(self) -> bool:
        self._check_open()
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}): use SEEK_SET, SEEK_CUR or SEEK_END")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._position = target
        return target

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Fill `buffer` as far as the object allows (a short count only at its end)."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self._position))
        done = 0
        while done < wanted:
            piece = self._bytes_at(self._position + done, wanted - done)
            view[done:done + len(piece)] = piece
            done += len(piece)
        self._position += done
        return done

    def close(self) -> None:
        if not self.closed:
            self._cache.clear()
            if self._threads is not None:
                self._threads.shutdown(wait=True)
            self._source.close()
        super().close()

    # --- prefetching ----------------------------------------------------------------------
    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Fetch the (start, length) ranges not yet cached side by side into the cache; how
        many of `ranges` were taken, from the first: as many as fit in a share of the cache
        and in what is left of MAX_READ_BYTES (0 when nothing is cached, as for a local
        file). Best effort: a range whose fetch fails is left to the read that needs it,
        which raises the failure where the decoder expects it."""
        self._check_open()
        taken, wanted = self._planned(ranges)
        if not wanted:
            return taken
        if self._threads is None:
            self._threads = ThreadPoolExecutor(PREFETCH_WORKERS,
                                               thread_name_prefix="original-prefetch")
        futures = [(start, self._threads.submit(self._source.fetch, start, length))
                   for start, length in wanted]
        for start, future in futures:
            try:
                data = future.result()
            except Exception:  # the read that needs it fetches it again, and raises
                continue
            self._cache.add(start, data)
        return taken

    def _planned(self, ranges: Sequence[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """How many ranges are taken, and the pieces of them neither cached nor planned
        already (two tiles may share a keyframe)."""
        room = min(self._cache.capacity // PREFETCH_CACHE_SHARE, self._limit - self.bytes_fetched)
        wanted: list[tuple[int, int]] = []
        planned = 0
        for taken, (start, length) in enumerate(ranges):
            pieces = _without(self._uncached(max(0, start), min(start + length, self.size)),
                              wanted)
            cost = sum(piece_length for _, piece_length in pieces)
            if planned + cost > room:
                return taken, _joined(wanted)
            planned += cost
            wanted += pieces
        return len(ranges), _joined(wanted)

    def _uncached(self, start: int, end: int) -> list[tuple[int, int]]:
        """The (start, length) pieces of [start, end) no cached segment holds."""
        pieces = []
        position = start
        while position < end:
            cached = self._cache.find(position)
            if cached is not None:
                position += len(cached)
                continue
            following = self._cache.next_start(position)
            stop = end if following is None else min(end, following)
            pieces.append((position, stop - position))
            position = stop
        return pieces

    # --- fetching -------------------------------------------------------------------------
    def _bytes_at(self, position: int, wanted: int) -> memoryview:
        """Up to `wanted` bytes from `position`: from the cache, else fetched (with the read
        ahead the window allows, within what is left of the budget)."""
        cached = self._cache.find(position)
        if cached is not None:
            piece = cached[:wanted]
            self._window.read_cached(position, position + len(piece))
            return piece
        end = self.size
        following = self._cache.next_start(position)
        if following is not None:
            end = min(end, following)  # the bytes from there on are cached already
        needed = min(wanted, end - position)
        length = min(max(needed, self._window.size_at(position)), end - position)
        left = self._limit - self.bytes_fetched
        if needed > left:
            raise ReadLimitExceededError(
                f"read more than MAX_READ_BYTES ({self._limit} bytes) of a {self.size}-byte "
                f"original; refusing ({self.bytes_fetched} bytes read, {needed} more needed)")
        length = min(length, left)
        data = self._source.fetch(position, length)
        if len(data) != length:  # a source breaking its contract must not loop us forever
            raise TruncatedOriginalError(
                f"the original {self._name!r} ended early: {len(data)} bytes at offset "
                f"{position}, {length} expected")
        self._cache.add(position, data)
        self._window.fetched(position, length)
        return memoryview(data)[:needed]

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed ObjectReader")


def _without(pieces: list[tuple[int, int]],
             taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of `pieces` that no (start, length) of `taken` covers."""
    for taken_start, taken_length in taken:
        taken_end = taken_start + taken_length
        kept = []
        for start, length in pieces:
            end = start + length
            if end <= taken_start or start >= taken_end:
                kept.append((start, length))
                continue
            if start < taken_start:
                kept.append((start, taken_start - start))
            if end > taken_end:
                kept.append((taken_end, end - taken_end))
        pieces = kept
    return pieces


def _joined(pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pieces in file order, those that touch made one (one request instead of two)."""
    joined: list[tuple[int, int]] = []
    for start, length in sorted(pieces):
        if joined and joined[-1][0] + joined[-1][1] == start:
            joined[-1] = (joined[-1][0], joined[-1][1] + length)
        else:
            joined.append((start, length))
    return joined
