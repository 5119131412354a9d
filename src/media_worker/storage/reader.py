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

Own code rather than a library: fsspec's caches fetch fixed blocks, one request each, and come
with an S3 stack of their own (s3fs, aiobotocore) beside the boto3 client the worker shares;
smart_open restarts one open-ended GET on every seek. Neither can refuse a fetch before it is
sent, nor ask the store to confirm the object is still the one first read.
"""

from __future__ import annotations

import io
from typing import Protocol

from media_worker.errors import ReadLimitExceededError, TruncatedOriginalError
from media_worker.storage.read_ahead import ReadAhead, SegmentCache, Window

DEFAULT_READ_AHEAD = ReadAhead()


class RangeSource(Protocol):
    """Where an ObjectReader's bytes come from. `size` and `etag` are those of the version
    read first; a source that finds another version later raises OriginalChangedError."""

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
    and ETag (they are cached, not fetched again). Not thread-safe: one job reads it.
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
            self._source.close()
        super().close()

    # --- fetching -------------------------------------------------------------------------
    def _bytes_at(self, position: int, wanted: int) -> memoryview:
        """Up to `wanted` bytes from `position`: from the cache, else fetched (with the read
        ahead the window allows, within what is left of the budget)."""
        cached = self._cache.find(position)
        if cached is not None:
            return cached[:wanted]
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
