"""The small RGBA copy of a picture that the ThumbHash and the colours are computed from.

Both only need low frequencies or colour statistics, so each reads a copy far smaller than a
thumbnail: their numpy and Pillow work then costs next to nothing whatever the thumbnail's
size (the sides chosen, and what they cost and change: docs/media.md, "Placeholders"). Alpha
is kept (not flattened): both weigh pixels by it.
"""

from __future__ import annotations

import numpy as np
import pyvips


def small_rgba(image: pyvips.Image, side: int) -> np.ndarray:
    """`image` fitted inside `side`x`side` (never enlarged) as 8-bit sRGB with alpha, an
    array of shape (height, width, 4); an opaque picture gets alpha 255 everywhere."""
    if image.width > side or image.height > side:
        image = image.thumbnail_image(side, height=side, size="down")
    image = _srgb8(image)
    if not image.hasalpha():
        image = image.bandjoin(255)
    pixels = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                        shape=(image.height, image.width, image.bands))
    return pixels[:, :, :4]


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """Three colour bands (grey is spread to R, G and B), alpha kept, 8 bits per band."""
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands < 3:  # grey, or grey and alpha
        grey = image[0]
        colour = grey.bandjoin([grey, grey])
        image = colour.bandjoin(image[1]) if image.bands == 2 else colour
    return image.copy(interpretation="srgb")
