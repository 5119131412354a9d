"""End to end: `cover` and `smart` sizes and a message's `focus`, through `media-worker run
--drain`, on every deployment (the embedded default always)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import pyvips

from media_worker.engines.framing import crop_window
from media_worker.repository.port import NewMedia
from media_worker.types import MediaStatus, ThumbnailSize, WorkerQueueMessage
from tests.integration.deployments import Deployment

SIZES = "small:150x150,avatar:256x256:smart,og:1200x630:cover:jpeg:85"


def submit(deployment: Deployment, path: Path, focus: dict[str, float] | None) -> str:
    """What the API does, with a focus point in the message."""
    media_id = str(uuid.uuid4())
    key = f"uploads/{media_id}/{path.name}"
    bucket = deployment.settings().minio_bucket
    with deployment.components() as components:
        components.storage.ensure_bucket(bucket)
        components.storage.upload_file(bucket, key, path, "image/jpeg")
        components.repository.insert(NewMedia(id=media_id, bucket=bucket, key=key,
                                              mime_type="image/jpeg", size=path.stat().st_size))
        message = WorkerQueueMessage(job_id=str(uuid.uuid4()), media_id=media_id,
                                     bucket=bucket, key=key, focus=focus)
        components.queue.send(json.dumps(message.to_wire()))
    return media_id


def test_cover_and_smart_sizes_with_a_focus_end_to_end(deployment: Deployment,
                                                        corpus: Path) -> None:
    deployment.env["THUMBNAIL_SIZES"] = SIZES
    rotated = corpus / "images/orientation/Landscape_6.jpg"  # stored 1200x1800, upright 1800x1200
    focused = submit(deployment, rotated, {"x": 0.2, "y": 0.0})
    centred = submit(deployment, rotated, None)
    deployment.drain()
    og = ThumbnailSize.parse("og:1200x630:cover")
    with deployment.components() as components:
        smart_crops = []
        for media_id, expected_y in ((focused, 0), (centred, 128)):
            record = components.repository.get(media_id)
            assert record is not None
            assert record.status is MediaStatus.READY, record.error
            thumbs = {thumb.size: thumb for thumb in record.thumbnails or []}
            small, avatar, cover = thumbs["small"], thumbs["avatar"], thumbs["og"]
            assert (small.width, small.height, small.crop) == (150, 100, None)
            assert (avatar.width, avatar.height) == (256, 256)
            assert avatar.crop is not None
            assert (avatar.crop.width, avatar.crop.height) == (1200, 1200)
            assert (cover.width, cover.height, cover.format) == (1200, 630, "jpeg")
            assert cover.crop == crop_window(1800, 1200, og).model_copy(
                update={"y": expected_y})  # the focus moved it up to the top edge
            smart_crops.append(avatar.crop)
            assert {thumb.kind for thumb in thumbs.values()} == {"image"}
            wire = cover.to_wire()
            assert wire["crop"] == {"x": 0, "y": expected_y, "width": 1800, "height": 945}
            assert wire["kind"] == "image"
            for thumb in thumbs.values():
                image = pyvips.Image.new_from_buffer(
                    components.storage.read(thumb.bucket, thumb.key), "")
                assert (image.width, image.height) == (thumb.width, thumb.height)
    assert smart_crops[0] == smart_crops[1]  # `smart` ignores the focus


@pytest.mark.parametrize("focus", [{"x": 1.5, "y": 0.5}, {"x": 0.5}])
def test_an_invalid_focus_fails_the_job_naming_it(embedded_deployment: Deployment,
                                                  corpus: Path, focus: dict) -> None:
    embedded_deployment.env["THUMBNAIL_SIZES"] = SIZES
    media_id = submit(embedded_deployment, corpus / "images/orientation/Landscape_0.jpg", focus)
    embedded_deployment.drain()
    with embedded_deployment.components() as components:
        record = components.repository.get(media_id)
    assert record is not None
    assert record.status is MediaStatus.FAILED
    assert "focus" in (record.error or "")
