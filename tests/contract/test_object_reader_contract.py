"""The open_reader contract: every storage adapter, one behaviour per test.

A reader over a stored object must give back the object's bytes wherever a decoder seeks, cost
only what is read, refuse to read more than its limit, and never mix two versions of an object.
The same tests run on the local directory and on S3 (moto and SeaweedFS); the videos are made
with Debian's ffmpeg, once per session, in a temporary directory.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from botocore.exceptions import ResponseStreamingError

from media_worker.errors import (
    OriginalChangedError,
    OriginalNotFoundError,
    ReadLimitExceededError,
    StorageUnavailableError,
    TransientError,
)
from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.port import ObjectStorage
from media_worker.storage.s3 import S3Storage

MIB = 1024 * 1024
OBJECT_BYTES = 5 * MIB + 321  # several read-ahead windows, not a round number
KEY = "uploads/original.bin"


def _payload(size: int = OBJECT_BYTES) -> bytes:
    """Non-repeating bytes, so a misplaced range cannot go unnoticed."""
    return os.urandom(size)


def _ffmpeg(out: Path, *args: str) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("`ffmpeg` not installed (apt-get install ffmpeg)")
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", *args,
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def short_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds at 320x240; ffmpeg's MP4 muxer writes the `moov` after the `mdat`."""
    return _ffmpeg(tmp_path_factory.mktemp("videos") / "short.mp4",
                   "-i", "testsrc2=size=320x240:rate=25:duration=2")


@pytest.fixture(scope="session")
def long_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty seconds of noise-laden 640x360 at 5 Mb/s (about 25 MB), a keyframe every two
    seconds, `moov` at the end."""
    return _ffmpeg(tmp_path_factory.mktemp("videos") / "long.mp4",
                   "-i", "testsrc2=size=640x360:rate=25:duration=40",
                   "-vf", "noise=alls=60:allf=t", "-g", "50",
                   "-b:v", "5M", "-maxrate", "5M", "-bufsize", "10M")


@pytest.fixture
def stored(storage: ObjectStorage, bucket: str) -> bytes:
    data = _payload()
    storage.upload(bucket, KEY, data, "application/octet-stream")
    return data


def _first_frame_after(container: Any, seconds: float) -> Any:
    stream = container.streams.video[0]
    container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    return next(container.decode(stream))


# --- bytes ---------------------------------------------------------------------------------
def test_random_seeks_and_reads_return_the_object_bytes(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    rng = random.Random(15)
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        for _ in range(60):
            start, length = rng.randrange(len(stored)), rng.randrange(1, 3 * MIB)
            reader.seek(start)
            assert reader.read(length) == stored[start:start + length]


def test_reading_the_end_then_the_start_returns_both(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        reader.seek(-64 * 1024, io.SEEK_END)
        tail = reader.read()
        reader.seek(0)
        head = reader.read(64 * 1024)

    assert (head, tail) == (stored[:64 * 1024], stored[-64 * 1024:])


def test_prefetched_ranges_read_back_as_the_object_bytes(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    """Fetched side by side (S3: concurrent ranged GETs on one client), counted once each."""
    rng = random.Random(16)
    ranges = sorted((rng.randrange(len(stored) - 64 * 1024), rng.randrange(1, 64 * 1024))
                    for _ in range(24))
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        opening = reader.bytes_fetched  # S3: the first GET brought the object's head
        taken = reader.prefetch(ranges)
        fetched = reader.bytes_fetched
        for start, length in ranges:
            reader.seek(start)
            assert reader.read(length) == stored[start:start + length]
        if taken:  # a reader with a cache (S3); the local file has none and reads in place
            assert taken == len(ranges)
            assert reader.bytes_fetched == fetched
            assert fetched - opening <= sum(length for _, length in ranges)


def test_size_is_the_object_length(storage: ObjectStorage, bucket: str, stored: bytes) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        assert reader.size == len(stored)


def test_the_etag_names_the_version(storage: ObjectStorage, bucket: str, stored: bytes) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as first, \
            storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as again:
        assert first.etag
        assert first.etag == again.etag
    storage.upload(bucket, KEY, _payload(), "application/octet-stream")

    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as replaced:
        assert replaced.etag != first.etag


def test_an_empty_object_reads_as_empty(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "uploads/empty", b"", "application/octet-stream")

    with storage.open_reader(bucket, "uploads/empty", max_read_bytes=1024) as reader:
        assert (reader.size, reader.read()) == (0, b"")


def test_opening_a_missing_object_raises_not_found_naming_the_key(
    storage: ObjectStorage, bucket: str
) -> None:
    with pytest.raises(OriginalNotFoundError, match=re.escape("uploads/gone.mp4")):
        storage.open_reader(bucket, "uploads/gone.mp4", max_read_bytes=1024)


# --- limits and faults ---------------------------------------------------------------------
def test_bytes_fetched_covers_what_was_read_and_no_more_than_the_object(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        reader.seek(2 * MIB)
        reader.read(1000)

        assert 1000 <= reader.bytes_fetched < len(stored)


def test_reading_past_max_read_bytes_is_refused_naming_the_setting(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=2 * MIB) as reader:
        assert reader.read(MIB) == stored[:MIB]

        with pytest.raises(ReadLimitExceededError,
                           match=rf"MAX_READ_BYTES \({2 * MIB} bytes\) of a {len(stored)}-byte"):
            reader.read()

        assert reader.bytes_fetched <= 2 * MIB


def test_an_object_replaced_between_ranges_fails_as_transient(
    storage: ObjectStorage, bucket: str, stored: bytes
) -> None:
    with storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        reader.read(100)
        storage.upload(bucket, KEY, _payload(len(stored)), "application/octet-stream")
        reader.seek(4 * MIB)

        with pytest.raises(OriginalChangedError,
                           match="the original changed while it was read") as caught:
            reader.read(100)

    assert isinstance(caught.value, TransientError)


# --- decoding video through the reader -----------------------------------------------------
def test_pyav_decodes_a_frame_of_an_mp4_whose_moov_is_at_the_end(
    storage: ObjectStorage, bucket: str, short_mp4: Path
) -> None:
    data = short_mp4.read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")  # the case a streaming read cannot do
    storage.upload(bucket, "uploads/short.mp4", data, "video/mp4")

    with storage.open_reader(bucket, "uploads/short.mp4", max_read_bytes=1 << 40) as reader, \
            av.open(reader, metadata_errors="ignore") as container:
        frame = _first_frame_after(container, 1.0)

    assert (frame.width, frame.height) == (320, 240)


def test_a_seek_and_one_frame_of_a_long_video_read_a_small_part_of_it(
    storage: ObjectStorage, bucket: str, long_mp4: Path
) -> None:
    storage.upload_file(bucket, "uploads/long.mp4", long_mp4, "video/mp4")

    with storage.open_reader(bucket, "uploads/long.mp4", max_read_bytes=1 << 40) as reader:
        with av.open(reader, metadata_errors="ignore") as container:
            frame = _first_frame_after(container, 4.0)
        fetched, size = reader.bytes_fetched, reader.size

    assert frame.width == 640
    assert fetched < size / 5


def test_max_read_bytes_reaches_the_caller_through_pyav(
    storage: ObjectStorage, bucket: str, long_mp4: Path
) -> None:
    storage.upload_file(bucket, "uploads/long.mp4", long_mp4, "video/mp4")

    with storage.open_reader(bucket, "uploads/long.mp4", max_read_bytes=MIB) as reader, \
            pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"), \
            av.open(reader, metadata_errors="ignore") as container:
        for _ in container.decode(video=0):
            pass


# --- S3 only: a range whose body is cut short ----------------------------------------------
class _BrokenBody:
    """A GetObject body that delivers its first chunk, then fails as a reset connection."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        yield self._body.read(chunk_size)
        raise ResponseStreamingError(error="Connection reset by peer")

    def close(self) -> None:
        self._body.close()


def _cut_ranges(storage: S3Storage, monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """Cut the body of the next `times` ranged GETs that start past the first byte."""
    real = storage._client.get_object
    cut: list[str] = []

    def get_object(**request: Any) -> Any:
        response = real(**request)
        if len(cut) < times and not request["Range"].startswith("bytes=0-"):
            cut.append(request["Range"])
            response["Body"] = _BrokenBody(response["Body"])
        return response

    monkeypatch.setattr(storage._client, "get_object", get_object)
    return cut


@pytest.mark.services
def test_a_range_cut_short_is_fetched_again(
    s3_storage: S3Storage, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _payload()
    s3_storage.upload(bucket, KEY, data, "application/octet-stream")
    reader = s3_storage.open_reader(bucket, KEY, max_read_bytes=1 << 40)
    cut = _cut_ranges(s3_storage, monkeypatch, times=1)
    reader.seek(3 * MIB)

    assert reader.read(1000) == data[3 * MIB:3 * MIB + 1000]

    assert len(cut) == 1
    assert reader.bytes_fetched > MIB + 1000  # the broken body's bytes cost transfer too


@pytest.mark.services
def test_a_range_cut_short_on_every_try_fails_as_unavailable(
    s3_storage: S3Storage, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_storage.upload(bucket, KEY, _payload(), "application/octet-stream")
    reader = s3_storage.open_reader(bucket, KEY, max_read_bytes=1 << 40)
    cut = _cut_ranges(s3_storage, monkeypatch, times=100)
    reader.seek(3 * MIB)

    with pytest.raises(StorageUnavailableError, match="cut short 5 times"):
        reader.read(1000)

    assert len(cut) == 5  # the storage's max_attempts, as for every other request


# --- filesystem only: how a changed file is told -------------------------------------------
def test_a_file_written_in_place_fails_as_changed(
    fs_storage: FilesystemStorage, bucket: str, tmp_path: Path
) -> None:
    fs_storage.upload(bucket, KEY, _payload(), "application/octet-stream")
    reader = fs_storage.open_reader(bucket, KEY, max_read_bytes=1 << 40)
    reader.read(100)
    with (tmp_path / "storage" / bucket / KEY).open("ab") as in_place:
        in_place.write(b"appended by something other than the worker")

    with pytest.raises(OriginalChangedError, match="written in place"):
        reader.read(100)


def test_a_file_deleted_while_read_fails_as_changed(
    fs_storage: FilesystemStorage, bucket: str
) -> None:
    fs_storage.upload(bucket, KEY, _payload(), "application/octet-stream")
    reader = fs_storage.open_reader(bucket, KEY, max_read_bytes=1 << 40)
    fs_storage.delete(bucket, KEY)

    with pytest.raises(OriginalChangedError, match="deleted"):
        reader.read(100)


def test_the_local_reader_fetches_exactly_what_is_read(
    fs_storage: FilesystemStorage, bucket: str
) -> None:
    fs_storage.upload(bucket, KEY, _payload(), "application/octet-stream")

    with fs_storage.open_reader(bucket, KEY, max_read_bytes=1 << 40) as reader:
        reader.seek(MIB)
        reader.read(1000)
        reader.seek(0)
        reader.read(10)

        assert reader.bytes_fetched == 1010
