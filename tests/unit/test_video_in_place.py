"""Videos read in place (issue 15): the local engine decodes a stored original through a
reader of its own storage, fetching a small part of it, with the same thumbnails as from a
local copy; the reader's refusals are the job's error. The videos are the session's big ones
(tests/big_videos.py: 335 MB MP4s with the index at the end and first, a fragmented MP4, a
30-minute WebM), made once per run."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.errors import (
    OriginalChangedError,
    ReadLimitExceededError,
    TruncatedOriginalError,
)
from media_worker.renditions import PreviewSpec, StoryboardSpec
from media_worker.storage.filesystem import FilesystemStorage
from media_worker.types import ThumbnailSize
from tests.big_videos import BigVideos
from tests.unit.reading_storages import S3LikeStorage, in_place, stored

BUCKET = "media"
SIZES = [ThumbnailSize(name="small", width=160, height=160),
         ThumbnailSize(name="large", width=640, height=640)]
CLIPS = OutputSpec(preview=PreviewSpec(160, 160, 1.0), storyboard=StoryboardSpec(64, 64, 30.0))
MIB = 1024 * 1024
LIMITS = {"max_pixels": 100_000_000, "max_video_seconds": 36_000}




def rendered(result: RenderResult) -> dict[str, bytes]:
    return {thumb.size.name: thumb.data for thumb in result.thumbnails}


@pytest.mark.parametrize("name", ["moov-at-end.mp4", "faststart.mp4", "fragmented.mp4",
                                  "long.webm"])
def test_a_video_read_in_place_renders_what_its_local_copy_renders(
        big_videos: BigVideos, tmp_path: Path, name: str) -> None:
    engine = LocalEngine(**LIMITS, storage=FilesystemStorage(stored(tmp_path, big_videos[name])))
    from_copy = engine.render(SourceMedia(big_videos[name], BUCKET, name), SIZES, CLIPS)
    from_store = engine.render(in_place(name), SIZES, CLIPS)
    assert rendered(from_store) == rendered(from_copy)
    assert {k: v for k, v in from_store.metadata.items() if k != "bytesRead"} == (
        from_copy.metadata)


@pytest.mark.parametrize("name", ["moov-at-end.mp4", "long.webm"])
def test_a_storyboard_read_in_place_fetches_its_tiles_keyframes_side_by_side(
        big_videos: BigVideos, tmp_path: Path, name: str) -> None:
    """Each tile is a jump, a round trip to the store when fetched as it is read; the
    keyframes are prefetched from the index instead, and the render is the same."""
    storage = S3LikeStorage(stored(tmp_path, big_videos[name]))
    engine = LocalEngine(**LIMITS, storage=storage)
    without = engine.render(in_place(name), SIZES, OutputSpec(preview=CLIPS.preview))
    with_storyboard = engine.render(in_place(name), SIZES, CLIPS)
    from_copy = engine.render(SourceMedia(big_videos[name], BUCKET, name), SIZES, CLIPS)
    assert rendered(with_storyboard) == rendered(from_copy)
    before, after = (source.threads for source in storage.sources[-2:])
    assert CLIPS.storyboard is not None
    tiles = len(CLIPS.storyboard.tile_times(with_storyboard.metadata["duration"]))
    on_the_jobs_thread = sum(not t.startswith("original-prefetch") for t in after)
    assert on_the_jobs_thread - len(before) <= tiles // 4
    assert sum(t.startswith("original-prefetch") for t in after) >= tiles // 2
    assert rendered(without).keys() < rendered(with_storyboard).keys()


@pytest.mark.parametrize("name", ["moov-at-end.mp4", "faststart.mp4", "fragmented.mp4",
                                  "long.webm"])
def test_reading_in_place_fetches_a_small_part_of_the_video(
        big_videos: BigVideos, tmp_path: Path, name: str) -> None:
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path, big_videos[name])))
    result = engine.render(in_place(name), SIZES, OutputSpec())
    size = big_videos[name].stat().st_size
    assert 0 < result.metadata["bytesRead"] <= max(0.02 * size, 16 * MIB)


def test_a_video_that_needs_more_than_max_read_bytes_fails_naming_the_limit(
        big_videos: BigVideos, tmp_path: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path, big_videos["long.webm"])))
    every_second = OutputSpec(storyboard=StoryboardSpec(64, 64, 1.0))
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        engine.render(in_place("long.webm", max_read_bytes=2 * MIB), SIZES, every_second)


def test_a_video_renders_in_place_after_one_was_refused_in_the_same_process(
        big_videos: BigVideos, tmp_path: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path, big_videos["long.webm"])))
    with pytest.raises(ReadLimitExceededError):
        engine.render(in_place("long.webm", max_read_bytes=200_000), SIZES, CLIPS)
    assert len(engine.render(in_place("long.webm"), SIZES, CLIPS).thumbnails) == 5


def test_an_original_that_changes_while_it_is_read_fails_as_transient(
        big_videos: BigVideos, tmp_path: Path) -> None:
    storage = S3LikeStorage(stored(tmp_path, big_videos["moov-at-end.mp4"]), changes_after=2)
    engine = LocalEngine(**LIMITS, storage=storage)
    with pytest.raises(OriginalChangedError, match="changed while it was read"):
        engine.render(in_place("moov-at-end.mp4"), SIZES, CLIPS)


def test_a_truncated_original_fails_permanently_with_a_reason(
        big_videos: BigVideos, tmp_path: Path) -> None:
    storage = S3LikeStorage(stored(tmp_path, big_videos["moov-at-end.mp4"]), truncated_by=1000)
    engine = LocalEngine(**LIMITS, storage=storage)
    with pytest.raises(TruncatedOriginalError, match=r"moov-at-end\.mp4.*ended early"):
        engine.render(in_place("moov-at-end.mp4"), SIZES, OutputSpec())


def test_a_decoder_process_reads_in_place_through_a_storage_of_its_own(
        big_videos: BigVideos, tmp_path: Path) -> None:
    root = stored(tmp_path, big_videos["faststart.mp4"])
    factory = partial(local_engine, **LIMITS, storage=partial(FilesystemStorage, root))
    engine = IsolatedEngine(factory, workers=1, timeout_seconds=60)
    try:
        result = engine.render(in_place("faststart.mp4"), SIZES, OutputSpec())
    finally:
        engine.close()
    assert [thumb.size.name for thumb in result.thumbnails] == ["small", "large"]
    assert result.metadata["bytesRead"] < big_videos["faststart.mp4"].stat().st_size


def test_a_changed_original_stays_transient_through_the_decoder_process(
        big_videos: BigVideos, tmp_path: Path) -> None:
    root = stored(tmp_path, big_videos["moov-at-end.mp4"])
    factory = partial(local_engine, **LIMITS,
                      storage=partial(S3LikeStorage, root, changes_after=2))
    engine = IsolatedEngine(factory, workers=1, timeout_seconds=60)
    try:
        with pytest.raises(OriginalChangedError):
            engine.render(in_place("moov-at-end.mp4"), SIZES, OutputSpec())
    finally:
        engine.close()
