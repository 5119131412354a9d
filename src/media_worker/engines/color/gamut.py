"""Gamuts: BT.2020 and Display P3 pictures brought into sRGB / BT.709 primaries.

The conversion is the exact linear matrix between the primaries (derived from their
chromaticities, D65 white). Colours outside BT.709 come out with a negative component; rather
than clipping each channel (which shifts hue and turns saturated reds and greens to neon), such
a pixel is moved towards the grey of the same luminance just far enough to fit: its hue and
luminance stay, only its saturation gives way.
"""

from __future__ import annotations

from functools import cache

import numpy as np

D65 = (0.3127, 0.3290)
PRIMARIES: dict[str, tuple[tuple[float, float], ...]] = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "p3": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def rgb_to_xyz(primaries: str) -> np.ndarray:
    """The RGB → XYZ matrix of a set of primaries with a D65 white."""
    xy = np.array(PRIMARIES[primaries], dtype=np.float64)
    columns = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy.sum(axis=1)) / xy[:, 1]])
    white = np.array([D65[0] / D65[1], 1.0, (1 - sum(D65)) / D65[1]])
    return columns * np.linalg.solve(columns, white)


@cache
def conversion(source: str, target: str = "bt709") -> np.ndarray:
    """The linear-light matrix from `source` primaries to `target` primaries (float32)."""
    matrix = np.linalg.inv(rgb_to_xyz(target)) @ rgb_to_xyz(source)
    return matrix.astype(np.float32)


def to_bt709(linear: np.ndarray, source: str) -> np.ndarray:
    """Linear light (..., 3) in `source` primaries → BT.709 primaries, out-of-gamut colours
    desaturated towards their own luminance instead of clipped. Only the pixels outside the
    gamut are touched by the desaturation (most of a photo is inside)."""
    if source == "bt709":
        return linear
    converted = linear @ conversion(source).T
    # element-wise minima: several times faster than min(axis=-1) over a last axis of three
    lowest = np.minimum(np.minimum(converted[..., 0], converted[..., 1]), converted[..., 2])
    outside = lowest < 0
    if outside.any():
        colours = converted[outside]
        luma = np.maximum(colours @ BT709_LUMA, 0.0)[:, None]
        # The fraction of the way from grey (luma) to the colour that keeps every channel >= 0
        keep = luma / np.maximum(luma - lowest[outside][:, None], 1e-9)
        converted[outside] = luma + keep * (colours - luma)
    return np.maximum(converted, 0.0, out=converted)  # rounding may leave -1e-8
