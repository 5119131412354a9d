"""Fragmented MP4s read in place (engines/fragmented_mp4.py): one with an `mfra` index opens
from it in a few fetches instead of one per fragment, with the whole file's duration; one
without keeps FFmpeg's own reading, and its duration."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from media_worker.engines.fragmented_mp4 import has_fragment_index
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize
from tests.big_videos import BigVideos
from tests.unit.clips import made_video
from tests.unit.reading_storages import BUCKET, S3LikeStorage, in_place, stored

SIZES = [ThumbnailSize(name="small", width=160, height=160)]
LIMITS = {"max_pixels": 100_000_000, "max_video_seconds": 36_000}
FEW_FETCHES = 30


def test_a_fragmented_mp4_with_an_index_opens_in_a_few_fetches(
        big_videos: BigVideos, tmp_path: Path) -> None:
    storage = S3LikeStorage(stored(tmp_path, big_videos["fragmented.mp4"]))
    result = LocalEngine(**LIMITS, storage=storage).render(
        in_place("fragmented.mp4"), SIZES, OutputSpec())
    fragments = result.metadata["duration"] / 2  # a keyframe, and so a fragment, every 2 s
    assert fragments > 10 * FEW_FETCHES
    assert storage.sources[-1].fetches <= FEW_FETCHES


def test_a_fragmented_mp4_read_in_place_has_the_whole_files_duration_and_bitrate(
        big_videos: BigVideos, tmp_path: Path) -> None:
    path = big_videos["fragmented.mp4"]
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path, path)))
    from_store = engine.render(in_place(path.name), SIZES, OutputSpec()).metadata
    from_copy = engine.render(SourceMedia(path, BUCKET, path.name), SIZES, OutputSpec()).metadata
    assert from_store["duration"] == from_copy["duration"] > 600
    assert from_store["bitrate"] == from_copy["bitrate"]


def test_a_fragmented_mp4_without_an_index_keeps_its_whole_duration(tmp_path: Path) -> None:
    clip = made_video(tmp_path / "clip.mp4", seconds=12, fps=10, keyframe_every=10)
    live = tmp_path / "live.mp4"  # as a recorder streaming fragments writes it: no mfra
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-i", str(clip),
                    "-c", "copy", "-movflags", "+frag_keyframe+empty_moov+skip_trailer",
                    str(live)], check=True)
    assert not has_fragment_index(io.BytesIO(live.read_bytes()))
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path / "store", live)))
    result = engine.render(in_place(live.name), SIZES, OutputSpec())
    assert result.metadata["duration"] == pytest.approx(12, abs=0.15)


def test_the_index_is_found_by_the_mfro_box_that_ends_the_file() -> None:
    mfro = (16).to_bytes(4, "big") + b"mfro" + bytes(4) + (1234).to_bytes(4, "big")
    assert has_fragment_index(io.BytesIO(b"\0" * 100 + mfro))
    assert not has_fragment_index(io.BytesIO(b"\0" * 100 + mfro + b"x"))
    assert not has_fragment_index(io.BytesIO(b"mfro"))


def test_looking_for_the_index_puts_the_readers_position_back() -> None:
    reader = io.BytesIO(b"\0" * 100)
    reader.seek(42)
    has_fragment_index(reader)
    assert reader.tell() == 42
