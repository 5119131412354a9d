"""Output options: a format and quality per size, and the background behind alpha."""

from __future__ import annotations

from pathlib import Path

import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.samples import transparent_png
from media_worker.types import ThumbnailSize


def render(path: Path, sizes: str, output: OutputSpec):
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    return engine.render(SourceMedia(path, "b", "k"), ThumbnailSize.parse_list(sizes), output)


def test_a_size_with_its_own_format_is_encoded_in_it(tmp_path: Path) -> None:
    png = transparent_png(tmp_path / "badge.png")
    small, social = render(png, "small:150x150,og:600x600:jpeg:70", OutputSpec()).thumbnails
    assert (small.format, small.mime_type) == ("webp", "image/webp")
    assert (social.format, social.mime_type) == ("jpeg", "image/jpeg")
    assert social.data[:3] == b"\xff\xd8\xff"


def test_transparency_becomes_the_configured_background_in_jpeg(tmp_path: Path) -> None:
    png = transparent_png(tmp_path / "badge.png")
    output = OutputSpec(format=ThumbnailFormat.JPEG, background=(0, 0, 255))
    [thumb] = render(png, "s:200x200", output).thumbnails
    corner = pyvips.Image.new_from_buffer(thumb.data, "")(2, 2)
    assert corner[2] > 200
    assert corner[0] < 60


def test_transparency_is_kept_in_webp(tmp_path: Path) -> None:
    png = transparent_png(tmp_path / "badge.png")
    [thumb] = render(png, "s:200x200", OutputSpec()).thumbnails
    image = pyvips.Image.new_from_buffer(thumb.data, "")
    assert image.hasalpha()
    assert image(2, 2)[3] == 0
