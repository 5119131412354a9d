"""What the row learns from the decoded picture beyond its BlurHash: the ThumbHash, colours and
perceptual hash, as `metadata` keys, chosen by PLACEHOLDERS.

All are read from one small array of the picture, about phash.REDUCED on its short side: a
job's comes from the thumbnail of_thumbnails.py chooses, decoded once and reduced by Pillow;
`picture_metadata` makes it from a libvips picture. Everything else comes from that array, by
Pillow and numpy, which on so few pixels cost less than one more libvips operation: the
pHash's 32x32, the ThumbHash's copy (thumbhash.SIDE), and the colours' copy (half of that).
A key whose fact the picture lacks is left out, never null, as everywhere in `metadata`: no
colours for a picture transparent everywhere, no `phash` for a flat one.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pyvips

from media_worker.engines.phash import phash_of_pixels, reduced_pixels
from media_worker.engines.placeholders import thumbhash
from media_worker.engines.placeholders.colors import palette_of
from media_worker.engines.placeholders.pixels import as_rgba, fitted, halved
from media_worker.renditions import PLACEHOLDER_KINDS as KINDS
from media_worker.renditions import parse_placeholders

__all__ = ["KINDS", "parse_placeholders", "picture_metadata", "pixel_metadata"]

def picture_metadata(picture: pyvips.Image, kinds: frozenset[str]) -> dict[str, Any]:
    """`thumbhash`, `dominantColor` and `palette` (those `kinds` asks for) and `phash` (always:
    it is no placeholder) of the upright, decoded, 8-bit picture; BlurHash is not here (it is
    made from the smallest thumbnail, placeholders/blurhash.py)."""
    return pixel_metadata(reduced_pixels(picture), kinds)


def pixel_metadata(pixels: np.ndarray, kinds: frozenset[str]) -> dict[str, Any]:
    """The same facts from the picture's 8-bit (h, w, bands) pixels, already brought down to
    about phash.REDUCED on their short side."""
    facts: dict[str, Any] = {}
    if {"thumbhash", "colors"} & kinds:
        rgba = fitted(as_rgba(pixels), thumbhash.SIDE)
        if "thumbhash" in kinds:
            facts["thumbhash"] = base64.b64encode(thumbhash.rgba_to_thumbhash(rgba)).decode()
        palette = palette_of(halved(rgba)) if "colors" in kinds else []
        if palette:
            facts["dominantColor"], facts["palette"] = palette[0], palette
    perceptual = phash_of_pixels(pixels)
    if perceptual is not None:
        facts["phash"] = perceptual.hex
    return facts
