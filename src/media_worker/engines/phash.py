"""A 64-bit perceptual hash, so a library can find the near-duplicates of an upload.

The DCT pHash as Zauner's thesis and pHash.org describe it, in the exact variant of the
`imagehash` package (the Python implementation others will have computed hashes with, so
theirs and ours compare): the picture in grey (ITU-R BT.601 luma of the sRGB code values,
as Pillow's "L"), resized to 32x32 ignoring the aspect ratio, a 2-D DCT-II, the 8x8 block
of lowest frequencies *including* the DC term, and one bit per coefficient: set when it is
above the median of those 64 (DC included in the median). Bits run row by row (vertical
frequency first), the first the most significant. pHash.org's own `ph_dct_imagehash` differs:
a 7x7 mean filter first, and the block one row and column further in, without the DC term.

Differences from `imagehash` in what goes in, not in the maths: a picture with alpha is seen
on white (Pillow's "L" would take the colour under transparent pixels, which is arbitrary),
and it is resized (libvips' Lanczos 3) before it is made grey, the grey left unrounded.
A hash is read from the largest thumbnail the job already decoded, never from the original
again: 32x32 is all it keeps. A flat picture (blank, one colour, transparent everywhere) gets
no hash: its AC terms are rounding noise and its bits with them, or all zero, so every flat
picture would match every other whatever its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyvips

SIDE = 32  # the picture is reduced to SIDExSIDE
BLOCK = 8  # the BLOCKxBLOCK lowest frequencies make the 64 bits
LUMA = (0.299, 0.587, 0.114)  # BT.601, as Pillow's convert("L")
FLAT = 1.0  # a 32x32 grey copy spanning less than one 8-bit level has nothing to hash
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
    """The pHash of an upright, decoded picture (8-bit sRGB or grey, alpha or not); None
    for a flat one."""
    grey = _grey32(image)
    return None if np.ptp(grey) < FLAT else phash_of_grey(grey)


def phash_of_grey(grey: np.ndarray) -> PerceptualHash:
    """The pHash of a SIDExSIDE grey picture (any scale of values)."""
    basis = _dct_basis()
    block = basis @ grey.astype(np.float64) @ basis.T  # the BLOCKxBLOCK lowest frequencies
    above = (block > np.median(block)).reshape(-1)
    bits = 0
    for bit in above:
        bits = (bits << 1) | int(bit)
    return PerceptualHash(bits)


def _grey32(image: pyvips.Image) -> np.ndarray:
    """The SIDExSIDE grey picture: resized in colour first (libvips on 8-bit bands is several
    times quicker than on a floating-point grey of the whole thumbnail), then made grey."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.format != "uchar":  # 16-bit or float: to 8-bit sRGB as the thumbnails are
        image = image.colourspace("srgb").cast("uchar")
    if (image.width, image.height) != (SIDE, SIDE):
        image = image.resize(SIDE / image.width, vscale=SIDE / image.height, kernel="lanczos3")
    pixels = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                        shape=(SIDE, SIDE, image.bands)).astype(np.float64)
    return pixels[:, :, 0] if image.bands < 3 else pixels[:, :, :3] @ np.array(LUMA)


@cache
def _dct_basis() -> np.ndarray:
    """The first BLOCK rows of the SIDE-point DCT-II, unnormalised (a scale changes no bit)."""
    k = np.arange(BLOCK)[:, None]
    n = np.arange(SIDE)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * SIDE))
