"""The small RGBA copies the ThumbHash and the colours read."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from media_worker.engines.placeholders.pixels import as_rgba, fitted, halved, small_rgba


@pytest.mark.parametrize(("pixel", "rgba"), [
    ([90], [90, 90, 90, 255]),  # grey
    ([90, 40], [90, 90, 90, 40]),  # grey and alpha
    ([90, 91, 92], [90, 91, 92, 255]),  # RGB
    ([90, 91, 92, 93], [90, 91, 92, 93]),  # RGBA
])
def test_every_band_layout_becomes_rgba(pixel: list[int], rgba: list[int]) -> None:
    assert as_rgba(np.array([[pixel]], dtype=np.uint8))[0, 0].tolist() == rgba


def test_small_rgba_fits_the_side_and_keeps_the_aspect() -> None:
    image = pyvips.Image.black(400, 100, bands=3).copy(interpretation="srgb")
    assert small_rgba(image, 64).shape == (16, 64, 4)


def test_small_rgba_never_enlarges() -> None:
    image = pyvips.Image.black(20, 10, bands=3).copy(interpretation="srgb")
    assert small_rgba(image, 64).shape == (10, 20, 4)


def test_fitted_fits_without_letting_colour_under_transparency_bleed() -> None:
    rgba = np.zeros((50, 100, 4), dtype=np.uint8)
    rgba[:, :50] = [255, 0, 0, 255]
    rgba[:, 50:] = [0, 255, 0, 0]  # green nobody sees
    small = fitted(rgba, 20)
    assert small.shape == (10, 20, 4)
    assert small[5, 10, 1] == 0  # the edge pixel: red, half transparent, no green


def test_halved_averages_blocks_by_alpha() -> None:
    rgba = np.array([[[200, 0, 0, 255], [0, 0, 200, 0]],
                     [[200, 0, 0, 255], [0, 0, 200, 0]]], dtype=np.uint8)
    assert halved(rgba).tolist() == [[[200, 0, 0, 128]]]


def test_halved_drops_an_odd_row_and_column() -> None:
    assert halved(np.zeros((5, 7, 4), dtype=np.uint8)).shape == (2, 3, 4)
