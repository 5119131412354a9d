"""A picture's dominant colour (to paint its frame while it loads) and a small palette.

The clustering is Pillow's: median cut, then a few k-means passes over its boxes
(`Image.quantize(method=MEDIANCUT, kmeans=...)`). Median cut alone splits every box at its
median, so its colours come out about equally popular and the small accents of a picture
(a red flower on pink) are averaged away; the k-means passes move each colour to the middle
of the pixels nearest it. Pillow's FASTOCTREE favours frequent colours but keeps near
duplicates; libimagequant is not in Pillow's wheels. What Pillow cannot do is weigh pixels,
so the weighting is ours: pixels transparent everywhere are left out before clustering, and
each colour's weight and value are the alpha-weighted sum and mean of the pixels mapped to it,
so a half-transparent pixel counts half and the colour under a transparent one not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvips
from PIL import Image

from media_worker.engines.placeholders.pixels import small_rgba

PALETTE_SIZE = 5
# The side of the copy the colours are read from: five colours come out of a thousand pixels
# as out of ten thousand, and Pillow's median cut costs more than linearly in the pixels.
SIDE = 32
KMEANS_PASSES = 5  # Pillow stops earlier once no colour moves


@dataclass(frozen=True)
class Colors:
    """`dominant` (`#rrggbb`, the palette's heaviest colour; None for a picture transparent
    everywhere) and `palette`, up to PALETTE_SIZE colours, heaviest first."""

    dominant: str | None
    palette: list[str]


def colors_of(image: pyvips.Image, count: int = PALETTE_SIZE) -> Colors:
    """The colours of `image` (any size: read from its copy of at most SIDE x SIDE)."""
    palette = palette_of(small_rgba(image, SIDE), count)
    return Colors(dominant=palette[0] if palette else None, palette=palette)


def palette_of(rgba: np.ndarray, count: int = PALETTE_SIZE) -> list[str]:
    """Up to `count` colours of an (h, w, 4) uint8 picture, heaviest first, as `#rrggbb`."""
    pixels = rgba.reshape(-1, 4)
    pixels = pixels[pixels[:, 3] > 0]
    if not len(pixels):
        return []
    strip = Image.fromarray(np.ascontiguousarray(pixels[None, :, :3]), mode="RGB")
    quantized = strip.quantize(colors=count, method=Image.Quantize.MEDIANCUT,
                               kmeans=KMEANS_PASSES)
    labels = np.asarray(quantized).reshape(-1)
    weights = pixels[:, 3].astype(np.float64) / 255
    totals = np.bincount(labels, weights=weights, minlength=count)
    colours = []
    for label in np.argsort(-totals, kind="stable"):
        if totals[label] <= 0:
            break
        mine = labels == label
        mean = (pixels[mine, :3] * weights[mine, None]).sum(axis=0) / totals[label]
        colours.append(hex_colour(mean))
    return colours


def hex_colour(rgb: np.ndarray) -> str:
    """`#rrggbb` of 0..255 components, rounded to the nearest level."""
    red, green, blue = (int(np.clip(np.rint(value), 0, 255)) for value in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"
