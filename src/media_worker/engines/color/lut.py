"""Lookup tables for the per-pixel curves of the HDR path.

A transfer curve costs two to three `pow` per sample; a thumbnail has millions of samples,
and the curves are smooth one-dimensional functions, so each is tabulated once per process
and applied as a gather. Code values index the PQ and HLG tables at 16-bit precision (finer
than any 10- or 12-bit source); light indexes the tone and sRGB tables through its square
root, which spends the table's resolution near black, where the eye and the curves need it.
The exact functions in transfer.py and tonemap.py build the tables and stay the reference
the tests check against.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from media_worker.engines.color.tonemap import SDR_WHITE_NITS, tone_map_brightest
from media_worker.engines.color.transfer import (
    BT2020_LUMA,
    hlg_scene_light,
    hlg_system_gamma,
    pq_to_nits,
    srgb_encode,
)

CODE_STEPS = 65_536  # 16-bit code values
LIGHT_STEPS = 16_384  # light tables, indexed by sqrt(light / top)


@cache
def pq_table() -> np.ndarray:
    return pq_to_nits(np.linspace(0, 1, CODE_STEPS, dtype=np.float32)).astype(np.float32)


@cache
def hlg_scene_table() -> np.ndarray:
    return hlg_scene_light(np.linspace(0, 1, CODE_STEPS, dtype=np.float32)).astype(np.float32)


@cache
def tone_ratio_table(curve: str, peak_nits: float) -> np.ndarray:
    """mapped / brightest for brightest = peak * (i / (n - 1))² (0 at i = 0 taken as the
    first step's ratio: the curves are linear near black)."""
    root = np.linspace(0, 1, LIGHT_STEPS, dtype=np.float64)
    brightest = np.maximum(peak_nits * root**2, peak_nits / (LIGHT_STEPS - 1) ** 2)
    mapped = tone_map_brightest(brightest.astype(np.float32), curve, peak_nits)
    return (mapped / brightest).astype(np.float32)


@cache
def srgb_table() -> np.ndarray:
    """uint8 sRGB code for relative light (i / (n - 1))²."""
    root = np.linspace(0, 1, LIGHT_STEPS, dtype=np.float64)
    return np.rint(srgb_encode(root**2) * 255).astype(np.uint8)


@cache
def hlg_gain_table(gamma: float) -> np.ndarray:
    """luma ** (gamma - 1) for luma = (i / (n - 1))², BT.2100's OOTF gain."""
    root = np.linspace(0, 1, LIGHT_STEPS, dtype=np.float64)
    luma = np.maximum(root**2, (1 / (LIGHT_STEPS - 1)) ** 2)
    return np.power(luma, gamma - 1).astype(np.float32)


def hlg_display_light(code: np.ndarray, peak_nits: float) -> np.ndarray:
    """HLG code values (..., 3) → display light in nits: tabulated inverse OETF, then the OOTF
    with its luminance gain tabulated too (see transfer.hlg_ootf for the equations)."""
    scene = hlg_scene_table()[code_index(code)]
    luma = scene @ BT2020_LUMA
    gain = hlg_gain_table(round(hlg_system_gamma(peak_nits), 6))[light_index(luma, 1.0)]
    gain *= np.float32(peak_nits)
    scene *= gain[..., None]
    return scene


def code_index(code: np.ndarray) -> np.ndarray:
    """Code values 0..1 → indices into a 16-bit table."""
    return np.rint(np.clip(code, 0.0, 1.0) * (CODE_STEPS - 1)).astype(np.uint16)


def light_index(light: np.ndarray, top: float) -> np.ndarray:
    """Light 0..top → indices into a square-root table."""
    scaled = np.sqrt(np.clip(light * (1.0 / top), 0.0, 1.0))
    return (scaled * (LIGHT_STEPS - 1) + 0.5).astype(np.int32)


def to_srgb8(relative: np.ndarray) -> np.ndarray:
    """Relative light 0..1 → uint8 sRGB (the tone curve already keeps light in range)."""
    index = np.sqrt(np.clip(relative, 0.0, 1.0))
    index *= LIGHT_STEPS - 1
    index += 0.5
    return srgb_table()[index.astype(np.uint16)]


def tone_ratio(brightest_nits: np.ndarray, curve: str, peak_nits: float) -> np.ndarray:
    """The factor each pixel's channels are scaled by (see tonemap.tone_map). Light above
    the peak (a highlight brighter than the mastering metadata says) lands where the peak
    does, its channels scaled alike, so it neither overflows nor changes hue."""
    peak = max(float(peak_nits), SDR_WHITE_NITS)
    ratio = tone_ratio_table(curve, peak)[light_index(brightest_nits, peak)]
    return ratio * np.minimum(np.float32(1.0), peak / np.maximum(brightest_nits, 1e-6))
