"""The imagor engine's local probe reads a video in place (issue 15, item 5): through a reader
of its own storage, in its decoder process, fetching the container's index and the first
frame's packets, with the facts a local copy gives; the reader's refusals are the job's error,
worded as for the local engine."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from media_worker.engines.imagor.original import IsolatedProbe, LocalProbe
from media_worker.engines.port import SourceMedia
from media_worker.errors import (
    ConfigurationError,
    JobTimeoutError,
    LimitExceededError,
    OriginalChangedError,
    ReadLimitExceededError,
    TruncatedOriginalError,
)
from media_worker.storage.filesystem import FilesystemStorage
from tests.big_videos import BigVideos, ffmpeg_available, make_big_videos
from tests.unit.reading_storages import S3LikeStorage, in_place, stored
from tests.unit.stalling_storage import StallingStorage

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs Debian's ffmpeg")

BUCKET = "media"
MIB = 1024 * 1024
LIMITS = {"max_pixels": 100_000_000, "max_video_seconds": 36_000}
LAYOUTS = ["moov-at-end.mp4", "faststart.mp4", "fragmented.mp4", "long.webm"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> BigVideos:
    return make_big_videos(tmp_path_factory.mktemp("imagor-probe-videos"), loops=3,
                           webm_loops=15)




@pytest.mark.parametrize("name", LAYOUTS)
def test_a_video_probed_in_place_gives_the_facts_of_its_local_copy(
        videos: BigVideos, tmp_path: Path, name: str) -> None:
    probe = LocalProbe(**LIMITS, storage=partial(S3LikeStorage, stored(tmp_path, videos[name])))
    from_store = probe.probe(in_place(name))
    from_copy = probe.probe(SourceMedia(videos[name], BUCKET, name))
    probe.close()
    assert from_store.media_type == from_copy.media_type
    assert from_store.candidates == from_copy.candidates
    assert from_store.duration == from_copy.duration
    assert {k: v for k, v in from_store.metadata.items() if k != "bytesRead"} == (
        from_copy.metadata)
    size = videos[name].stat().st_size
    # The index and the first frame, within the local engine's bound (2% or 16 MB); a
    # fragmented MP4's index is spread over the file: a little of every fragment.
    assert 0 < from_store.metadata["bytesRead"] <= max(0.02 * size, 16 * MIB)
    if name != "fragmented.mp4":
        assert from_store.metadata["bytesRead"] <= 0.02 * size
    assert "bytesRead" not in from_copy.metadata


def test_a_truncated_video_fails_the_probe_permanently_with_a_reason(
        videos: BigVideos, tmp_path: Path) -> None:
    """As the local engine words it, not as a header FFmpeg could not read (which would let
    the job go on to the service)."""
    root = stored(tmp_path, videos["moov-at-end.mp4"])
    probe = LocalProbe(**LIMITS, storage=partial(S3LikeStorage, root, truncated_by=1000))
    with pytest.raises(TruncatedOriginalError, match=r"moov-at-end\.mp4.*ended early"):
        probe.probe(in_place("moov-at-end.mp4"))


def test_a_video_the_probe_would_read_too_much_of_fails_naming_max_read_bytes(
        videos: BigVideos, tmp_path: Path) -> None:
    """A fragmented MP4 without an index is opened by reading a little at every fragment:
    more than a small MAX_READ_BYTES allows."""
    root = stored(tmp_path, videos["fragmented.mp4"])
    probe = LocalProbe(**LIMITS, storage=partial(S3LikeStorage, root))
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES") as raised:
        probe.probe(in_place("fragmented.mp4", max_read_bytes=100_000))
    assert isinstance(raised.value, LimitExceededError)  # permanent, as every limit
    # The same original under the default limit is probed (reading about a tenth of it).
    assert probe.probe(in_place("fragmented.mp4")).metadata["bytesRead"] <= 16 * MIB


def test_an_original_that_changes_while_probed_fails_as_transient(
        videos: BigVideos, tmp_path: Path) -> None:
    root = stored(tmp_path, videos["moov-at-end.mp4"])
    probe = LocalProbe(**LIMITS, storage=partial(S3LikeStorage, root, changes_after=2))
    with pytest.raises(OriginalChangedError, match="changed while it was read"):
        probe.probe(in_place("moov-at-end.mp4"))


def test_a_still_where_a_video_was_is_a_changed_original(
        videos: BigVideos, tmp_path: Path, corpus: Path) -> None:
    """The processor sniffed a video's head; the object is a JPEG by the time it is probed."""
    root = stored(tmp_path, corpus / "images" / "orientation" / "Landscape_1.jpg")
    probe = LocalProbe(**LIMITS, storage=partial(FilesystemStorage, root))
    with pytest.raises(OriginalChangedError, match="no longer a video or a PDF"):
        probe.probe(in_place("Landscape_1.jpg"))


def test_a_probe_without_storage_says_so() -> None:
    with pytest.raises(ConfigurationError, match="no storage to read originals in place"):
        LocalProbe(**LIMITS).probe(in_place("any.mp4"))


@pytest.fixture
def isolated(videos: BigVideos, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[IsolatedProbe]:
    root = stored(tmp_path_factory.mktemp("isolated-store"), videos["faststart.mp4"],
                  videos["moov-at-end.mp4"])
    prober = IsolatedProbe(processes=1, timeout_seconds=60, **LIMITS,
                           storage=partial(S3LikeStorage, root))
    yield prober
    prober.close()


def test_the_decoder_process_reads_in_place_through_a_storage_of_its_own(
        isolated: IsolatedProbe, videos: BigVideos) -> None:
    probe = isolated.probe(in_place("faststart.mp4"))
    assert (probe.metadata["width"], probe.metadata["height"]) == (640, 360)
    assert probe.metadata["bytesRead"] < 0.02 * videos["faststart.mp4"].stat().st_size
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        isolated.probe(in_place("moov-at-end.mp4", max_read_bytes=20_000))


def test_a_probe_stuck_reading_in_place_is_stopped_at_its_timeout(
        videos: BigVideos, tmp_path: Path) -> None:
    """The reader works inside the decoder process: a read that never returns costs the job
    (a permanent timeout), and the next job gets a fresh process."""
    root = stored(tmp_path, videos["moov-at-end.mp4"])
    stalling = IsolatedProbe(processes=1, timeout_seconds=3, **LIMITS,
                             storage=partial(StallingStorage, root))
    try:
        with pytest.raises(JobTimeoutError, match="probing the original took longer than 3 s"):
            stalling.probe(in_place("moov-at-end.mp4"))
        copy = stalling.probe(SourceMedia(videos["moov-at-end.mp4"], BUCKET, "moov-at-end.mp4"))
        assert copy.metadata["width"] == 640
    finally:
        stalling.close()
