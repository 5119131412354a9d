"""End to end: VIDEO_PREVIEW and VIDEO_STORYBOARD through `media-worker run --drain`, on
moto + PostgreSQL and on the embedded default: `preview.webp`, `storyboard-0.jpg` and
`storyboard.vtt` are stored beside the stills, and the row's entries say what each is."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import pyvips
import webvtt
from PIL import Image

from media_worker.types import MediaStatus, ThumbnailData
from tests.integration.deployments import Deployment

VIDEO = "videos/Big_Buck_Bunny_180_10s.webm"  # 320x180, 10 s: a 1 s interval gives 10 tiles
PHOTO = "images/orientation/Landscape_0.jpg"


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services), "embedded"])
def clip_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


def test_a_video_gets_its_preview_and_storyboard_end_to_end(clip_deployment: Deployment,
                                                            corpus: Path) -> None:
    deployment = clip_deployment
    deployment.env |= {"THUMBNAIL_SIZES": "small:96x96", "VIDEO_PREVIEW": "120x120:1:6:webp",
                       "VIDEO_STORYBOARD": "64x64:1"}
    video, photo = deployment.enqueue(corpus / VIDEO, corpus / PHOTO)
    deployment.drain()
    with deployment.components() as components:
        record, still = components.repository.get(video), components.repository.get(photo)
        assert record is not None
        assert still is not None
        assert (record.status, still.status) == (MediaStatus.READY, MediaStatus.READY), (
            record.error, still.error)
        thumbs = {thumb.size: thumb for thumb in record.thumbnails or []}
        stored = {name: components.storage.read(thumb.bucket, thumb.key)
                  for name, thumb in thumbs.items()}
    assert {thumb.kind for thumb in still.thumbnails or []} == {"image"}  # photos: no clips
    assert {name: thumb.key.rsplit("/", 1)[1] for name, thumb in thumbs.items()} == {
        "small": "small.webp", "preview": "preview.webp", "storyboard-0": "storyboard-0.jpg",
        "storyboard": "storyboard.vtt"}
    assert all(thumb.key.startswith(f"thumbnails/{video}/") for thumb in thumbs.values())
    check_preview(thumbs["preview"], stored["preview"])
    check_storyboard(thumbs["storyboard-0"], thumbs["storyboard"], stored)


def check_preview(entry: ThumbnailData, data: bytes) -> None:
    wire = entry.to_wire()
    assert (wire["kind"], wire["frames"], wire["durationMs"]) == ("preview", 6, 1000)
    assert (wire["width"], wire["height"], wire["mimeType"]) == (120, 68, "image/webp")
    with Image.open(io.BytesIO(data)) as pillow:
        assert (pillow.n_frames, pillow.info["loop"], pillow.size) == (6, 0, (120, 68))


def check_storyboard(sheet: ThumbnailData, vtt: ThumbnailData,
                     stored: dict[str, bytes]) -> None:
    assert (sheet.kind, sheet.mime_type, sheet.width, sheet.height) == (
        "storyboard", "image/jpeg", 640, 36)  # ten 64x36 tiles on one row
    assert (vtt.kind, vtt.mime_type, vtt.format) == ("storyboard-vtt", "text/vtt", "vtt")
    assert "frames" not in sheet.to_wire()
    image = pyvips.Image.new_from_buffer(stored["storyboard-0"], "")
    assert (image.width, image.height) == (640, 36)
    cues = list(webvtt.from_buffer(io.StringIO(stored["storyboard"].decode())))
    assert [cue.text for cue in cues] == [
        f"storyboard-0.jpg#xywh={64 * index},0,64,36" for index in range(10)]
    assert (cues[0].start, cues[-1].end) == ("00:00:00.000", "00:00:10.000")
