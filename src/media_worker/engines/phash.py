"""A 64-bit perceptual hash, so a library can find the near-duplicates of an upload.

The DCT pHash as Zauner's thesis and pHash.org describe it, in the exact variant of the
`imagehash` package (the Python implementation others will have computed hashes with, so
theirs and ours compare): the picture in grey (ITU-R BT.601 luma of the sRGB code values,
as Pillow's "L"), resized to 32x32 ignoring the aspect ratio, a 2-D DCT-II, the 8x8 block
of lowest frequencies *including* the DC term, and one bit per coefficient: set when it is
above the median of those 64 (DC included in the median). Bits run row by row (vertical
frequency first), the first the most significant. pHash.org's own `ph_dct_imagehash` differs:
a 7x7 mean filter first, and the block one row and column further in, without the DC term.

What goes in differs from `imagehash.phash(picture)` in two ways, the maths not at all: a
picture with alpha is seen on white (Pillow's "L" would take the colour under transparent
pixels, which is arbitrary), and a large one is first reduced by libvips (REDUCED); from
there it is Pillow's "L" and Lanczos resize, as imagehash does. A hash is read from the
largest thumbnail the job already decoded, never from the original again: 32x32 is all it
keeps. A flat picture (blank, one colour, transparent everywhere) gets
no hash: its AC terms are rounding noise and its bits with them, or all zero, so every flat
picture would match every other whatever its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyvips
from PIL import Image

SIDE = 32  # the picture is reduced to SIDExSIDE
BLOCK = 8  # the BLOCKxBLOCK lowest frequencies make the 64 bits
FLAT = 1  # a 32x32 grey copy spanning less than one 8-bit level has nothing to hash
# A large picture is first brought down to this short side by libvips (twice SIDE, so Pillow's
# resize to SIDExSIDE still averages, even for a panorama's short side): Pillow then resizes
# a small picture as imagehash would the whole one, at a fraction of the cost.
REDUCED = 2 * SIDE
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class PerceptualHash:
    """64 bits; `hex` for `metadata.phash`, `signed` for a PostgreSQL `bigint` column."""

    bits: int  # 0 .. 2**64 - 1

    @property
    def hex(self) -> str:
        """16 lower-case hex digits, as `str(imagehash.phash(...))`."""
        return f"{self.bits:016x}"

    @property
    def signed(self) -> int:
        """The same 64 bits as a two's-complement signed integer (PostgreSQL has no
        unsigned `bigint`)."""
        return self.bits - (1 << 64) if self.bits >> 63 else self.bits

    @classmethod
    def parse(cls, value: str | int) -> PerceptualHash:
        """From 16 hex digits or a signed or unsigned 64-bit integer."""
        bits = int(value, 16) if isinstance(value, str) else value & _MASK
        if not 0 <= bits <= _MASK:
            raise ValueError(f"not a 64-bit hash: {value!r}")
        return cls(bits)


def hamming(a: PerceptualHash | str | int, b: PerceptualHash | str | int) -> int:
    """How many of the 64 bits differ (0: the same picture to pHash; different photos
    mostly differ in about half)."""
    first = a if isinstance(a, PerceptualHash) else PerceptualHash.parse(a)
    second = b if isinstance(b, PerceptualHash) else PerceptualHash.parse(b)
    return (first.bits ^ second.bits).bit_count()


def phash_of(image: pyvips.Image) -> PerceptualHash | None:
    """The pHash of an upright, decoded picture (8-bit sRGB or grey, alpha or not, any size);
    None for a flat one."""
    return phash_of_pixels(reduced_pixels(image))


def phash_of_pixels(pixels: np.ndarray) -> PerceptualHash | None:
    """The pHash of an 8-bit picture given as an (h, w, bands) array (grey, grey and alpha,
    RGB or RGBA), exactly `imagehash.phash` of it but for alpha, which is seen on white; None
    for a flat one."""
    picture = Image.fromarray(_on_white(pixels))
    grey = np.asarray(picture.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS))
    return None if int(grey.max()) - int(grey.min()) < FLAT else phash_of_grey(grey)


def phash_of_grey(grey: np.ndarray) -> PerceptualHash:
    """The pHash of a SIDExSIDE grey picture (any scale of values)."""
    basis = _dct_basis()
    block = basis @ grey.astype(np.float64) @ basis.T  # the BLOCKxBLOCK lowest frequencies
    above = (block > np.median(block)).reshape(-1)
    bits = 0
    for bit in above:
        bits = (bits << 1) | int(bit)
    return PerceptualHash(bits)


def reduced_pixels(image: pyvips.Image) -> np.ndarray:
    """`image` as 8-bit (h, w, bands), its short side first brought down to REDUCED by
    libvips when longer (never enlarged)."""
    if image.format != "uchar":  # 16-bit or float: to 8-bit sRGB as the thumbnails are
        image = image.colourspace("srgb").cast("uchar")
    scale = REDUCED / min(image.width, image.height)
    if scale < 1 and image.hasalpha():  # colour under transparent pixels must not bleed
        image = image.premultiply().resize(scale, kernel="lanczos3").unpremultiply()
        image = image.cast("uchar")
    elif scale < 1:
        image = image.resize(scale, kernel="lanczos3")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands))


def _on_white(pixels: np.ndarray) -> np.ndarray:
    """Grey or RGB as Pillow takes it; with alpha (the last band of 2 or 4), over white."""
    bands = pixels.shape[2]
    if bands in (1, 3):
        return pixels[:, :, 0] if bands == 1 else pixels
    alpha = pixels[:, :, -1:].astype(np.float64) / 255
    over = pixels[:, :, :-1] * alpha + 255 * (1 - alpha)
    over = np.rint(over).astype(np.uint8)
    return over[:, :, 0] if bands == 2 else over


@cache
def _dct_basis() -> np.ndarray:
    """The first BLOCK rows of the SIDE-point DCT-II, unnormalised (a scale changes no bit)."""
    k = np.arange(BLOCK)[:, None]
    n = np.arange(SIDE)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * SIDE))
