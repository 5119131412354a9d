"""One probe for both engines: the imagor engine's local probe reports what the local engine
reports, for the videos and photos where the two readings once differed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from media_worker.engines.imagor.original import IsolatedProbe, LocalProbe, probe_original
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import LimitExceededError
from media_worker.types import ThumbnailSize

SMALL = ThumbnailSize.parse_list("small:150x150")
VIDEO_FIELDS = ("width", "height", "duration", "codec", "frameRate", "rotation", "mirrored",
                "hasAudio")
IMAGE_FIELDS = ("width", "height", "orientation", "hasAlpha", "pages")
VIDEOS = [
    "videos/sample.mp4",
    "videos/video_rotation_90.mp4",  # display matrix: a quarter turn
    "videos/sample_rotate_and_reflect.mp4",  # a transpose: turned and mirrored
    "videos/h264_white_frame_sar_16_9.mp4",  # non-square pixels, stretched wider
    "videos/Big_Buck_Bunny_180_10s.webm",
    "videos/portrait_4k60.mp4",
]
PHOTOS = [
    "images/orientation/Portrait_6.jpg",  # EXIF orientation swaps the sides
    "images/formats/heic/IMG_5195.HEIC",  # Pillow's path
    "images/formats/gif/dispose_bgnd_rgba.gif",  # five pages
    "images/formats/png/hopper.png",
]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def local_metadata(engine: LocalEngine, path: Path) -> dict[str, object]:
    return engine.render(SourceMedia(path, "media", path.name), SMALL, OutputSpec()).metadata


@pytest.mark.parametrize("name", VIDEOS)
def test_the_imagor_probe_reads_a_video_as_the_local_engine(engine: LocalEngine, corpus: Path,
                                                            name: str) -> None:
    local = local_metadata(engine, corpus / name)
    probed = probe_original(corpus / name).metadata
    assert {k: probed[k] for k in VIDEO_FIELDS} == {k: local[k] for k in VIDEO_FIELDS}


@pytest.mark.parametrize("name", PHOTOS)
def test_the_imagor_probe_reads_a_photo_as_the_local_engine(engine: LocalEngine, corpus: Path,
                                                            name: str) -> None:
    path = corpus / name
    if not path.exists():
        pytest.skip(f"{name} is not in this corpus")
    local = local_metadata(engine, path)
    probed = probe_original(path).metadata
    assert {k: probed[k] for k in IMAGE_FIELDS} == {k: local[k] for k in IMAGE_FIELDS}


def test_the_probe_of_non_square_pixels_expects_both_pictures(corpus: Path) -> None:
    """The stretched display size for the row; imagorvideo may answer the coded aspect too."""
    probe = probe_original(corpus / "videos/h264_white_frame_sar_16_9.mp4")
    assert (probe.metadata["width"], probe.metadata["height"]) == (1138, 480)
    assert (1138, 480) in probe.candidates
    assert (640, 480) in probe.candidates


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedProbe]:
    prober = IsolatedProbe(processes=1, timeout_seconds=60, max_pixels=3_000_000,
                           max_video_seconds=3600)
    yield prober
    prober.close()


def test_the_isolated_probe_gives_what_the_local_probe_gives(isolated: IsolatedProbe,
                                                             corpus: Path) -> None:
    local = LocalProbe(max_pixels=3_000_000, max_video_seconds=3600)
    for name in ("videos/video_rotation_90.mp4", "images/orientation/Portrait_6.jpg"):
        assert isolated.probe(copy(corpus / name)) == local.probe(copy(corpus / name)), name


def test_the_isolated_probe_enforces_the_limits(isolated: IsolatedProbe, corpus: Path) -> None:
    with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
        isolated.probe(copy(corpus / "videos/portrait_4k60.mp4"))


def copy(path: Path) -> SourceMedia:
    """A downloaded original, as the probe is given it."""
    return SourceMedia(path, "media", path.name)
