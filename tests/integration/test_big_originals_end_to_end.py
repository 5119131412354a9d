"""End to end: videos read in place (issue 15) through `media-worker run --drain`. Large
files on SeaweedFS (a production S3 server) and the embedded default; a small one on moto,
which loads a whole object for every ranged GET. Each video's thumbnails match a render of
the same file from a local path, the job fetches a small part of it and downloads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from media_worker.app.worker import processor_settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import SourceMedia
from media_worker.types import MediaRecord, MediaStatus
from tests.big_videos import BigVideos, ffmpeg_available, make_big_videos
from tests.integration.deployments import Deployment, log_events
from tests.unit.test_fidelity import ssim

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs Debian's ffmpeg")

SIZES = "small:160x160,large:640x640"
BIG = ("moov-at-end.mp4", "faststart.mp4", "fragmented.mp4", "long.webm")
MIB = 1024 * 1024


@pytest.fixture(scope="session")
def big_videos(tmp_path_factory: pytest.TempPathFactory) -> BigVideos:
    """MP4s of about 60 MB (moov at the end, faststart, fragmented) and a 10-minute WebM."""
    return make_big_videos(tmp_path_factory.mktemp("big-originals"), loops=8)


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.services), "embedded"])
def big_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services), "embedded"])
def small_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


def drained(deployment: Deployment, files: list[Path]) -> tuple[list[MediaRecord], list[dict]]:
    """The rows of `files` after a drain, and the worker's `ready` log lines."""
    deployment.env |= {"THUMBNAIL_SIZES": SIZES}
    ids = deployment.enqueue(*files)
    result = deployment.drain()
    with deployment.components() as components:
        records = [components.repository.get(media_id) for media_id in ids]
    ready = [event for event in log_events(result.stdout + result.stderr)
             if event.get("event") == "ready"]
    assert all(records)
    return records, ready  # type: ignore[return-value]


def assert_read_in_place(deployment: Deployment, record: MediaRecord, video: Path,
                         ready: list[dict]) -> None:
    assert record.status is MediaStatus.READY, record.error
    size = video.stat().st_size
    metadata = record.metadata or {}
    assert metadata["bytes"] == size
    assert metadata["bytesRead"] <= max(0.02 * size, 16 * MIB)
    (line,) = [event for event in ready if event.get("mediaId") == record.id]
    assert "download" not in line["stages"]  # nothing of it was written to the scratch dir
    assert_same_thumbnails(deployment, record, video)


def assert_same_thumbnails(deployment: Deployment, record: MediaRecord, video: Path) -> None:
    """SSIM ≥ 0.99 against the same sizes rendered from a local copy of the file."""
    settings = deployment.settings()
    engine = LocalEngine(max_pixels=settings.max_pixels,
                         max_video_seconds=settings.max_video_seconds)
    local = engine.render(SourceMedia(video, "local", video.name), settings.thumbnail_sizes,
                          processor_settings(settings).output)
    expected = {thumb.size.name: thumb.data for thumb in local.thumbnails}
    with deployment.components() as components:
        for thumb in record.thumbnails or []:
            ours = pyvips.Image.new_from_buffer(components.storage.read(thumb.bucket,
                                                                        thumb.key), "")
            theirs = pyvips.Image.new_from_buffer(expected[thumb.size], "")
            assert (ours.width, ours.height) == (theirs.width, theirs.height)
            assert ssim(ours, theirs) >= 0.99, thumb.size


def test_large_videos_are_read_in_place_with_the_thumbnails_of_a_local_copy(
        big_deployment: Deployment, big_videos: BigVideos) -> None:
    files = [big_videos[name] for name in BIG]
    records, ready = drained(big_deployment, files)
    for record, video in zip(records, files, strict=True):
        assert_read_in_place(big_deployment, record, video, ready)


def test_a_small_video_is_read_in_place(small_deployment: Deployment,
                                        big_videos: BigVideos) -> None:
    video = big_videos["segment.mp4"]
    (record,), ready = drained(small_deployment, [video])
    assert_read_in_place(small_deployment, record, video, ready)


def test_a_video_that_makes_the_worker_read_too_much_fails_naming_max_read_bytes(
        small_deployment: Deployment, big_videos: BigVideos) -> None:
    small_deployment.env |= {"MAX_READ_BYTES": str(2 * MIB), "VIDEO_STORYBOARD": "64x64:1"}
    (record,), _ = drained(small_deployment, [big_videos["segment.mp4"]])
    assert record.status is MediaStatus.FAILED
    assert "MAX_READ_BYTES" in (record.error or "")
    assert record.attempts == 1  # permanent: not retried
