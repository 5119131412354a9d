"""The BlurHash placeholder stored in a row's metadata, character for character what the
`blurhash` package encodes."""

from __future__ import annotations

from pathlib import Path

import blurhash
import numpy as np
import pytest
from PIL import Image

from media_worker.engines.local import LocalEngine
from media_worker.engines.placeholders.blurhash import blurhash_of_picture, encode
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.samples import make_samples
from media_worker.types import ThumbnailSize

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_samples(tmp_path_factory.mktemp("samples"))


def placeholder(path: Path) -> dict:
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    return engine.render(SourceMedia(path, "b", "k"), SIZES, OutputSpec()).metadata["placeholder"]


def test_every_sample_gets_a_blurhash_placeholder(samples: list[Path]) -> None:
    for path in samples:
        value = placeholder(path)
        assert value["type"] == "blurhash"
        assert len(value["value"]) == 28  # 4x3 components


def test_placeholder_decodes_to_the_pictures_main_colour(samples: list[Path]) -> None:
    arrow = next(p for p in samples if p.suffix == ".jpg")
    pixels = blurhash.decode(placeholder(arrow)["value"], 8, 6)
    red, green, blue = pixels[5][4][:3]  # the bottom row is the blue bar
    assert blue > red
    assert blue > green


def package_encoding(rgb: np.ndarray, x_components: int, y_components: int) -> str:
    """What the `blurhash` package makes of the same pixels (rows of 3-byte pixels)."""
    rows = [[bytes(pixel) for pixel in row] for row in rgb.tolist()]
    return blurhash.encode(rows, components_x=x_components, components_y=y_components)


@pytest.mark.parametrize("seed", range(3))
def test_our_encoder_is_the_packages_to_the_character(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        height, width = (int(side) for side in rng.integers(1, 17, size=2))
        x_components, y_components = (int(count) for count in rng.integers(1, 10, size=2))
        noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        flat = np.broadcast_to(noise[:1, :1], noise.shape).copy()  # AC terms of rounding
        halves = flat.copy()
        halves[:, width // 2:] = 255 - halves[:, width // 2:]
        for rgb in (noise, flat, halves):
            assert encode(rgb, x_components, y_components) == package_encoding(
                rgb, x_components, y_components)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_thumbnails_blurhash_is_the_packages_of_its_16_pixel_copy(mode: str) -> None:
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:113, 0:150]
    pixels = np.stack([xs * 255 // 150, ys * 255 // 113, rng.integers(0, 256, xs.shape),
                       (xs * 2) % 256], axis=-1).astype(np.uint8)
    picture = Image.fromarray(pixels[..., :len(mode)], mode=mode)
    small = picture.convert("RGBA")
    small.thumbnail((16, 16), Image.Resampling.BOX)
    flat = Image.new("RGB", small.size, (255, 255, 255))
    flat.paste(small, mask=small.getchannel("A"))  # transparency seen on white
    assert blurhash_of_picture(picture) == package_encoding(np.asarray(flat), 4, 3)
