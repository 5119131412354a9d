"""The BlurHash placeholder stored in a row's metadata."""

from __future__ import annotations

from pathlib import Path

import blurhash
import pytest

from media_worker.engines.local import LocalEngine
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
