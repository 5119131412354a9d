"""End to end: an animated size of an animated GIF through `media-worker run --drain`, on
moto + PostgreSQL and on the embedded default: the row's entry says `animation` with its
frames and duration, and the stored object is an animated WebP."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from media_worker.types import MediaStatus
from tests.integration.deployments import Deployment

SIZES = "small:96x96,loop:120x120:animated"
GIF = "images/formats/gif/chi.gif"  # 320x240, 31 frames of 100 ms, loops forever


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services), "embedded"])
def animated_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


def test_an_animated_gif_becomes_an_animated_webp_end_to_end(
        animated_deployment: Deployment, corpus: Path) -> None:
    deployment = animated_deployment
    deployment.env["THUMBNAIL_SIZES"] = SIZES
    deployment.env["MAX_ANIMATION_FRAMES"] = "12"
    (media_id,) = deployment.enqueue(corpus / GIF)
    deployment.drain()
    with deployment.components() as components:
        record = components.repository.get(media_id)
        assert record is not None
        assert record.status is MediaStatus.READY, record.error
        thumbs = {thumb.size: thumb for thumb in record.thumbnails or []}
        still, loop = thumbs["small"], thumbs["loop"]
        assert (still.kind, still.frames) == ("image", None)
        wire = loop.to_wire()
        assert (wire["kind"], wire["frames"], wire["durationMs"]) == ("animation", 12, 1200)
        assert (wire["width"], wire["height"], wire["mimeType"]) == (120, 90, "image/webp")
        assert wire["key"].endswith("/loop.webp")
        stored = pyvips.Image.new_from_buffer(
            components.storage.read(loop.bucket, loop.key), "", n=-1)
    assert stored.get("vips-loader") == "webpload_buffer"
    assert (stored.width, stored.get("page-height")) == (120, 90)
    assert 1 < stored.get("n-pages") <= 12  # WebP merges a frame identical to the one before
    assert sum(stored.get("delay")) == 1200
    assert (record.metadata or {})["animation"] == {"frames": 31, "loop": 0}
