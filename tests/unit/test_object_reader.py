"""ObjectReader's own logic over an in-memory range source: what it fetches, keeps and refuses.

The adapters' sources (S3 on real servers, the local file) are specified in
tests/contract/test_object_reader_contract.py; here the source only records what was asked.
"""

from __future__ import annotations

import io
import os
import random

import pytest

from media_worker.errors import ReadLimitExceededError, TruncatedOriginalError
from media_worker.storage.read_ahead import MIB, NONE, ReadAhead, SegmentCache
from media_worker.storage.reader import ObjectReader
from tests.fakes import BytesRangeSource

KIB = 1024
POLICY = ReadAhead(first=64 * KIB, most=256 * KIB, cache=1 * MIB)


def _reader(data: bytes, *, policy: ReadAhead = POLICY, limit: int = 1 << 40,
            head: bytes = b"") -> tuple[ObjectReader, BytesRangeSource]:
    source = BytesRangeSource(data)
    return ObjectReader(source, name="uploads/v.mp4", max_read_bytes=limit, read_ahead=policy,
                        head=head), source


def _data(size: int) -> bytes:
    return os.urandom(size)


def test_random_seeks_and_reads_return_the_object_bytes() -> None:
    data = _data(3 * MIB + 17)
    reader, _ = _reader(data)
    rng = random.Random(15)

    for _ in range(300):
        start, length = rng.randrange(len(data)), rng.randrange(1, 200 * KIB)
        reader.seek(start)
        assert reader.read(length) == data[start:start + length]


def test_reading_cached_bytes_again_fetches_nothing() -> None:
    reader, source = _reader(_data(MIB))
    reader.read(1000)
    fetched = list(source.fetches)

    reader.seek(10)
    reader.read(500)

    assert source.fetches == fetched


def test_read_ahead_doubles_while_reads_run_on_up_to_its_cap() -> None:
    reader, source = _reader(_data(2 * MIB))

    while reader.read(32 * KIB):
        pass

    lengths = [length for _, length in source.fetches]
    assert lengths[:4] == [64 * KIB, 128 * KIB, 256 * KIB, 256 * KIB]


def test_a_jump_starts_the_read_ahead_small_again() -> None:
    reader, source = _reader(_data(2 * MIB))
    for _ in range(8):
        reader.read(32 * KIB)  # sequential: the window has grown

    reader.seek(MIB + 123)
    reader.read(10)

    assert source.fetches[-1] == (MIB + 123, 64 * KIB)


def test_a_jump_near_the_end_fetches_only_up_to_the_end() -> None:
    data = _data(MIB)
    reader, source = _reader(data)

    reader.seek(-8, io.SEEK_END)

    assert reader.read(8) == data[-8:]
    assert source.fetches == [(MIB - 8, 8)]


def test_a_fetch_stops_where_cached_bytes_begin() -> None:
    data = _data(MIB)
    reader, source = _reader(data)
    reader.seek(40 * KIB)
    reader.read(10)  # caches 40 KiB .. 104 KiB

    reader.seek(0)
    assert reader.read(200 * KIB) == data[:200 * KIB]

    assert source.fetches[1] == (0, 40 * KIB)
    assert source.bytes_received == sum(length for _, length in source.fetches)
    assert source.bytes_received < len(data)


def test_reading_a_whole_object_in_any_order_fetches_each_byte_once() -> None:
    data = _data(MIB - 3)  # fits the 1 MiB cache
    reader, source = _reader(data)
    offsets = list(range(0, len(data), 48 * KIB))
    random.Random(7).shuffle(offsets)

    for offset in offsets:
        reader.seek(offset)
        assert reader.read(48 * KIB) == data[offset:offset + 48 * KIB]

    assert source.bytes_received == len(data)


def test_the_least_recently_used_segment_is_dropped_first() -> None:
    cache = SegmentCache(capacity=300)
    cache.add(0, b"a" * 100)
    cache.add(1000, b"b" * 100)
    cache.add(2000, b"c" * 100)
    assert cache.find(0) is not None  # 0 is now the most recently used

    cache.add(3000, b"d" * 100)

    assert cache.find(1000) is None
    assert cache.find(0) is not None
    assert cache.cached_bytes == 300


def test_a_segment_larger_than_the_cache_is_not_kept() -> None:
    cache = SegmentCache(capacity=100)
    cache.add(0, b"x" * 50)

    cache.add(500, b"y" * 101)

    assert cache.find(500) is None
    assert cache.find(0) is not None


def test_a_read_larger_than_the_window_is_one_fetch() -> None:
    data = _data(MIB)
    reader, source = _reader(data)

    assert reader.read(600 * KIB) == data[:600 * KIB]

    assert source.fetches == [(0, 600 * KIB)]


def test_without_read_ahead_exactly_the_bytes_read_are_fetched() -> None:
    data = _data(MIB)
    reader, source = _reader(data, policy=NONE)

    reader.seek(1000)
    reader.read(10)
    reader.seek(1000)
    reader.read(10)

    assert source.fetches == [(1000, 10), (1000, 10)]


def test_a_fetch_past_max_read_bytes_is_refused_before_it_is_sent() -> None:
    reader, source = _reader(_data(MIB), policy=NONE, limit=100 * KIB)
    reader.read(90 * KIB)

    with pytest.raises(ReadLimitExceededError, match=r"MAX_READ_BYTES \(102400 bytes\) of a "
                                                     r"1048576-byte original; refusing"):
        reader.read(20 * KIB)

    assert source.bytes_received == 90 * KIB


def test_read_ahead_shrinks_to_what_max_read_bytes_leaves() -> None:
    data = _data(MIB)
    reader, source = _reader(data, limit=100 * KIB)

    reader.read(10)  # would read 64 KiB ahead
    reader.seek(70 * KIB)
    assert reader.read(30 * KIB) == data[70 * KIB:100 * KIB]  # a 64 KiB window, cut to 30

    assert source.bytes_received == 100 * KIB


def test_the_limit_counts_every_fetch_not_the_object_size() -> None:
    """Bytes evicted and fetched again count twice: jumping back and forth cannot read more
    than the limit, however small the object."""
    data = _data(256 * KIB)
    reader, _ = _reader(data, policy=ReadAhead(first=64 * KIB, most=64 * KIB, cache=64 * KIB),
                        limit=len(data))
    for offset in (0, 128 * KIB, 0, 128 * KIB):  # the cache holds one of the two at a time
        reader.seek(offset)
        reader.read(64 * KIB)
    reader.seek(0)

    with pytest.raises(ReadLimitExceededError):
        reader.read(64 * KIB)


def test_the_head_given_at_opening_is_read_without_a_fetch() -> None:
    data = _data(MIB)
    reader, source = _reader(data, head=data[:4096])

    assert reader.read(4096) == data[:4096]

    assert source.fetches == []


def test_the_read_after_the_head_counts_as_sequential() -> None:
    data = _data(MIB)
    reader, source = _reader(data, head=data[:64 * KIB])
    reader.seek(64 * KIB)

    reader.read(1)

    assert source.fetches == [(64 * KIB, 128 * KIB)]


def test_reading_at_or_past_the_end_returns_nothing() -> None:
    reader, source = _reader(_data(1000))

    reader.seek(5000)

    assert reader.read(10) == b""
    assert reader.tell() == 5000
    assert source.fetches == []


def test_seek_accepts_whence_like_a_file() -> None:
    reader, _ = _reader(_data(1000))

    assert reader.seek(-10, io.SEEK_END) == 990
    assert reader.seek(5, io.SEEK_CUR) == 995
    assert reader.tell() == 995


def test_a_seek_before_the_start_is_refused() -> None:
    reader, _ = _reader(_data(1000))

    with pytest.raises(ValueError, match="negative"):
        reader.seek(-1)


def test_readinto_fills_the_buffer() -> None:
    data = _data(300 * KIB)
    reader, _ = _reader(data)
    buffer = bytearray(200 * KIB)

    assert reader.readinto(buffer) == len(buffer)
    assert bytes(buffer) == data[:200 * KIB]


def test_a_source_returning_fewer_bytes_than_asked_is_a_truncated_original() -> None:
    class ShortSource(BytesRangeSource):
        def fetch(self, start: int, length: int) -> bytes:
            return super().fetch(start, length)[:-1]

    reader = ObjectReader(ShortSource(_data(1000)), name="k", max_read_bytes=10_000)

    with pytest.raises(TruncatedOriginalError, match="ended early"):
        reader.read(100)


def test_closing_closes_the_source_and_later_reads_fail() -> None:
    reader, source = _reader(_data(1000))

    with reader:
        reader.read(10)

    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)


def test_it_is_a_readable_seekable_binary_file() -> None:
    reader, _ = _reader(_data(1000))

    assert isinstance(reader, io.RawIOBase)
    assert reader.readable()
    assert reader.seekable()
    assert not reader.writable()
    assert reader.size == 1000
    assert reader.etag == '"fake-etag"'


def test_a_read_ahead_larger_than_its_cache_is_refused() -> None:
    with pytest.raises(ValueError, match="fit in the cache"):
        ReadAhead(first=MIB, most=8 * MIB, cache=4 * MIB)
