"""Transfer functions: code values ↔ light. PQ (SMPTE ST 2084), HLG (ARIB STD-B67 with the
BT.2100 OOTF) and sRGB. Arrays are float32, light in nits for PQ/HLG, relative for sRGB."""

from __future__ import annotations

import numpy as np

PQ_PEAK_NITS = 10_000.0
HLG_NOMINAL_PEAK_NITS = 1_000.0  # BT.2100's reference display for HLG
_M1 = 2610 / 16384
_M2 = 2523 / 4096 * 128
_C1 = 3424 / 4096
_C2 = 2413 / 4096 * 32
_C3 = 2392 / 4096 * 32
_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * np.log(4 * _HLG_A)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], dtype=np.float32)


def pq_to_nits(code: np.ndarray) -> np.ndarray:
    """PQ EOTF: code values 0..1 → absolute luminance, 0..10,000 nits."""
    power = np.power(np.clip(code, 0.0, 1.0), 1 / _M2)
    return PQ_PEAK_NITS * np.power(np.maximum(power - _C1, 0.0) / (_C2 - _C3 * power), 1 / _M1)


def nits_to_pq(nits: np.ndarray | float) -> np.ndarray:
    """Inverse PQ EOTF: nits → code values 0..1 (BT.2390's tone curve works in this domain)."""
    y = np.power(np.clip(np.asarray(nits, dtype=np.float32) / PQ_PEAK_NITS, 0.0, 1.0), _M1)
    return np.power((_C1 + _C2 * y) / (1 + _C3 * y), _M2)


def hlg_scene_light(code: np.ndarray) -> np.ndarray:
    """HLG inverse OETF: code values 0..1 → relative scene light 0..1 (per channel)."""
    e = np.clip(code, 0.0, 1.0)
    return np.where(e <= 0.5, e * e / 3, (np.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12)


def hlg_ootf(scene: np.ndarray, peak_nits: float = HLG_NOMINAL_PEAK_NITS) -> np.ndarray:
    """BT.2100's OOTF for a display of `peak_nits` (system gamma 1.2 at 1,000 nits): scene
    light (..., 3) → display light in nits, the gamma applied to luminance (hue kept)."""
    gamma = hlg_system_gamma(peak_nits)
    luma = np.maximum(scene @ BT2020_LUMA, 1e-9)[..., None]
    return peak_nits * np.power(luma, gamma - 1) * scene


def hlg_system_gamma(peak_nits: float) -> float:
    """BT.2100's system gamma for a display of `peak_nits` (1.2 at 1,000 nits)."""
    return 1.2 + 0.42 * float(np.log10(peak_nits / HLG_NOMINAL_PEAK_NITS))


def hlg_to_nits(code: np.ndarray, peak_nits: float = HLG_NOMINAL_PEAK_NITS) -> np.ndarray:
    """HLG inverse OETF, then the OOTF: code values (..., 3) → display light in nits."""
    return hlg_ootf(hlg_scene_light(code), peak_nits)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB OETF (IEC 61966-2-1): relative linear light 0..1 → code values 0..1."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(code: np.ndarray) -> np.ndarray:
    """Inverse sRGB OETF: code values 0..1 → relative linear light."""
    x = np.clip(code, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))
