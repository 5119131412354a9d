"""RESIZE_LIGHT: downscaling in gamma space averages sRGB code values (1-px white/black lines
become mid-grey 128, which shows at about a fifth of the light); `linear` averages light
(half of white's light, sRGB ~188), as the eye does from far enough away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.transfer import srgb_decode, srgb_encode
from media_worker.engines.encode import render_sizes
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

SIZES = ThumbnailSize.parse_list("large:100x100,small:25x25")
HALF_LIGHT = float(srgb_encode(np.float32(0.5)) * 255)  # 187.5


def stripes(height: int = 400, width: int = 400, bright: int = 255, dark: int = 0
            ) -> np.ndarray:
    """Alternating 1-px horizontal lines (sRGB code values)."""
    picture = np.full((height, width, 3), dark, dtype=np.uint8)
    picture[::2] = bright
    return picture


def light_of(code: np.ndarray) -> float:
    """The mean relative light of 8-bit sRGB code values."""
    return float(srgb_decode(code.astype(np.float32) / 255).mean())


def pixels(data: bytes) -> np.ndarray:
    return pyvips.Image.new_from_buffer(data, "").numpy()


@pytest.mark.parametrize(("bright", "dark"), [(255, 0), (230, 40)])
def test_linear_downscaling_keeps_the_light_of_the_original(bright: int, dark: int) -> None:
    original = stripes(bright=bright, dark=dark)
    largest = pyvips.Image.new_from_array(original, interpretation="srgb")
    output = OutputSpec(format=ThumbnailFormat.PNG, resize_light="linear")
    for thumb in render_sizes(largest.thumbnail_image(100, linear=True), SIZES, output):
        shrunk = pixels(thumb.data)
        assert light_of(shrunk) == pytest.approx(light_of(original), rel=0.02), thumb.size.name
        assert float(shrunk.std()) < 2  # an even tone, no stripes left


def test_gamma_downscaling_averages_code_values() -> None:
    largest = pyvips.Image.new_from_array(stripes(), interpretation="srgb")
    output = OutputSpec(format=ThumbnailFormat.PNG)
    [_, small] = render_sizes(largest.thumbnail_image(100), SIZES, output)
    assert float(pixels(small.data).mean()) == pytest.approx(127.5, abs=1.5)


def test_the_engine_downscales_in_linear_light_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "stripes.png"
    pyvips.Image.new_from_array(stripes(), interpretation="srgb").pngsave(str(path))
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    linear = OutputSpec(format=ThumbnailFormat.PNG, resize_light="linear")
    gamma = OutputSpec(format=ThumbnailFormat.PNG)
    source = SourceMedia(path, "b", "k")
    for thumb in engine.render(source, SIZES, linear).thumbnails:
        assert float(pixels(thumb.data).mean()) == pytest.approx(HALF_LIGHT, abs=2)
    for thumb in engine.render(source, SIZES, gamma).thumbnails:
        assert float(pixels(thumb.data).mean()) == pytest.approx(127.5, abs=2)
