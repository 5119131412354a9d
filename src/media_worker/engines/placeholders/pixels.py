"""The small RGBA copies of a picture that the ThumbHash and the colours are computed from.

Both only need low frequencies or colour statistics, so each reads a copy far smaller than a
thumbnail: their numpy and Pillow work then costs next to nothing whatever the thumbnail's
size (the sides chosen, and what they cost and change: docs/media.md, "Placeholders"). Alpha
is kept (not flattened): both weigh pixels by it. Bands are sorted out in numpy rather than
by more libvips operations, each of which costs more than the arithmetic on so few pixels.
"""

from __future__ import annotations

import numpy as np
import pyvips
from PIL import Image


def small_rgba(image: pyvips.Image, side: int) -> np.ndarray:
    """`image` fitted inside `side`x`side` (never enlarged) as 8-bit sRGB with alpha, an
    array of shape (height, width, 4); an opaque picture gets alpha 255 everywhere."""
    if image.width > side or image.height > side:
        image = image.thumbnail_image(side, height=side, size="down")
    if image.format != "uchar" or image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb").cast("uchar")
    pixels = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                        shape=(image.height, image.width, image.bands))
    return as_rgba(pixels)


def as_rgba(pixels: np.ndarray) -> np.ndarray:
    """Grey, grey and alpha, RGB or RGBA (the last axis) as RGBA, opaque where alpha was
    missing."""
    bands = pixels.shape[-1]
    colour = np.repeat(pixels[..., :1], 3, axis=-1) if bands < 3 else pixels[..., :3]
    if bands in (2, 4):
        alpha = pixels[..., -1:]
    else:
        alpha = np.full((*pixels.shape[:-1], 1), 255, dtype=np.uint8)
    return np.concatenate([colour, alpha], axis=-1)


def halved(rgba: np.ndarray) -> np.ndarray:
    """Each 2x2 block averaged into one pixel, colours weighted by alpha (a transparent pixel
    lends its block no colour); an odd last row or column is dropped."""
    h, w = rgba.shape[0] // 2 * 2, rgba.shape[1] // 2 * 2
    if not h or not w:
        return rgba
    pixels = rgba[:h, :w].astype(np.float64)
    alpha = pixels[..., 3:]
    weighted = pixels[..., :3] * alpha  # whole numbers: every sum below is exact
    quarters = ((slice(0, None, 2), slice(0, None, 2)), (slice(1, None, 2), slice(0, None, 2)),
                (slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(1, None, 2)))
    weight = sum(alpha[rows, columns] for rows, columns in quarters)
    colour = sum(weighted[rows, columns] for rows, columns in quarters) / np.maximum(weight, 1)
    return np.concatenate([colour, weight / 4], axis=-1).round().astype(np.uint8)


def fitted(rgba: np.ndarray, side: int) -> np.ndarray:
    """An RGBA array fitted inside `side`x`side` (never enlarged) by Pillow's Lanczos, which
    premultiplies alpha as libvips' thumbnail does; for arrays already small, where a libvips
    operation costs more than Pillow's whole resize."""
    h, w = rgba.shape[:2]
    scale = min(side / w, side / h)
    if scale >= 1:
        return rgba
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if (rgba[..., 3] == 255).all():  # opaque: the same colours without (un)premultiplying
        picture = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
        return as_rgba(np.asarray(picture.resize(size, Image.Resampling.LANCZOS)))
    picture = Image.fromarray(np.ascontiguousarray(rgba), mode="RGBA")
    return np.asarray(picture.resize(size, Image.Resampling.LANCZOS))
