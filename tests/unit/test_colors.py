"""The dominant colour and palette: heaviest first, weighted by alpha, transparency ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.engines.placeholders.colors import colors_of, palette_of

RED, GREEN, BLUE = (220, 20, 30), (20, 180, 40), (30, 40, 200)


def stripes(*parts: tuple[tuple[int, int, int], int, int]) -> np.ndarray:
    """Vertical stripes, 20 rows high: (colour, width, alpha) each."""
    columns = [np.tile([*colour, alpha], (20, width, 1)) for colour, width, alpha in parts]
    return np.concatenate(columns, axis=1).astype(np.uint8)


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def near(hex_colour: str, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool(np.abs(rgb(hex_colour) - colour).max() <= tolerance)


def test_palette_lists_the_colours_of_a_picture_heaviest_first() -> None:
    picture = stripes((GREEN, 30, 255), (RED, 60, 255), (BLUE, 10, 255))
    assert palette_of(picture) == ["#dc141e", "#14b428", "#1e28c8"]


def test_dominant_colour_is_the_heaviest_in_hex() -> None:
    image = pyvips.Image.new_from_array(stripes((BLUE, 30, 255), (RED, 70, 255)),
                                        interpretation="srgb")
    assert colors_of(image).dominant == "#dc141e"


def test_fully_transparent_pixels_are_ignored_whatever_colour_they_hide() -> None:
    picture = stripes((GREEN, 80, 0), (RED, 20, 255))
    assert palette_of(picture) == ["#dc141e"]


def test_pixels_count_by_their_alpha() -> None:
    # 60 faint blue columns weigh 60 x 0.25 = 15, less than 40 opaque red ones
    picture = stripes((BLUE, 60, 64), (RED, 40, 255))
    assert palette_of(picture)[:2] == ["#dc141e", "#1e28c8"]


def test_a_picture_transparent_everywhere_has_no_colours() -> None:
    image = pyvips.Image.black(30, 20, bands=4).copy(interpretation="srgb")
    colours = colors_of(image)
    assert colours.dominant is None
    assert colours.palette == []


def test_palette_has_at_most_five_colours() -> None:
    ys, xs = np.mgrid[0:64, 0:64]
    rainbow = np.stack([xs * 4, ys * 4, (xs + ys) * 2, np.full_like(xs, 255)], axis=-1)
    palette = palette_of(rainbow.astype(np.uint8))
    assert len(palette) == 5
    assert len(set(palette)) == 5


def test_a_grey_picture_is_its_grey() -> None:
    grey = pyvips.Image.black(40, 30).linear(1, 90).cast("uchar").copy(interpretation="b-w")
    assert colors_of(grey).palette == ["#5a5a5a"]


def test_a_flag_gives_its_three_colours(corpus: Path) -> None:
    flag = pyvips.Image.thumbnail(
        str(corpus / "images/formats/png/Flag_of_the_Netherlands-16bit.png"), 200)
    top_three = colors_of(flag).palette[:3]
    for colour in ((174, 28, 40), (255, 255, 255), (33, 70, 139)):  # red, white, blue
        assert any(near(found, colour) for found in top_three), (colour, top_three)


def test_a_photo_of_sky_and_shadow_has_a_sky_blue_and_a_dark_colour(corpus: Path) -> None:
    photo = pyvips.Image.thumbnail(str(corpus / "images/orientation/Landscape_0.jpg"), 400)
    colours = [rgb(found) for found in colors_of(photo).palette]
    assert any(blue > red + 50 and blue > 180 for red, _, blue in colours)
    assert any(value.max() < 50 for value in colours)


def test_a_transparent_background_is_not_a_colour_of_the_picture(corpus: Path) -> None:
    path = corpus / "images/formats/avif/plum-blossom-large.profile0.8bpc.yuv420.alpha-full.avif"
    blossom = pyvips.Image.thumbnail(str(path), 400)
    colours = [rgb(found) for found in colors_of(blossom).palette]
    assert all(value.min() > 100 for value in colours)  # no black of the empty background
    red, green, blue = colours[0]
    assert red > green  # pink
    assert red > blue


@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_every_band_layout_gives_colours(bands: int) -> None:
    image = pyvips.Image.black(20, 10, bands=bands).linear(1, 200).cast("uchar")
    image = image.copy(interpretation="b-w" if bands < 3 else "srgb")
    assert colors_of(image).dominant == "#c8c8c8"
