"""Tone curves: HDR light (nits) → the range of an SDR display (relative 0..1).

Each curve maps the brightest channel of a pixel and scales the other two by the same factor,
so hue and saturation survive (mapping channels one by one would wash colours towards white).
`bt2390` is ITU-R BT.2390's EETF, the broadcast standard for showing PQ on a dimmer display:
it leaves everything below the knee alone and rolls highlights off smoothly into the target
peak. `hable` and `mobius` are the curves of FFmpeg's `tonemap` filter; `clip` is no curve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from media_worker.engines.color.transfer import nits_to_pq, pq_to_nits

SDR_WHITE_NITS = 100.0  # BT.1886's reference display: SDR code value 1.0
MOBIUS_KNEE = 0.3  # FFmpeg's default `param` for mobius: linear up to here
CURVES = ("bt2390", "hable", "mobius", "clip")


def tone_map(linear_nits: np.ndarray, curve: str, source_peak_nits: float) -> np.ndarray:
    """(..., 3) display light in nits → (..., 3) relative light 0..1 of an SDR display."""
    brightest = np.maximum(brightest_channel(linear_nits), 1e-6)[..., None]
    mapped = tone_map_brightest(brightest, curve, source_peak_nits)
    return np.clip(linear_nits * (mapped / brightest), 0.0, 1.0)


def tone_map_brightest(brightest: np.ndarray, curve: str, source_peak_nits: float
                       ) -> np.ndarray:
    """The curve itself: a pixel's brightest channel in nits → relative SDR light."""
    return _CURVES[curve](brightest, max(source_peak_nits, SDR_WHITE_NITS))


def brightest_channel(rgb: np.ndarray) -> np.ndarray:
    """max(R, G, B) per pixel by two element-wise maxima: numpy's max(axis=-1) over a last
    axis of three is a strided reduction per pixel, several times slower."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def bt2390(nits: np.ndarray, source_peak: float, target_peak: float = SDR_WHITE_NITS
           ) -> np.ndarray:
    """BT.2390 EETF with black at 0: nits → nits, `source_peak` onto `target_peak`."""
    source_pq = float(nits_to_pq(source_peak))
    e1 = nits_to_pq(nits) / source_pq
    max_lum = float(nits_to_pq(target_peak)) / source_pq
    if max_lum >= 1:  # the display is as bright as the master: nothing to roll off
        return np.minimum(nits, target_peak)
    knee = 1.5 * max_lum - 0.5
    t = np.clip((e1 - knee) / (1 - knee), 0.0, 1.0)
    spline = ((2 * t**3 - 3 * t**2 + 1) * knee + (t**3 - 2 * t**2 + t) * (1 - knee)
              + (-2 * t**3 + 3 * t**2) * max_lum)
    e2 = np.where(e1 < knee, e1, spline)
    return pq_to_nits(np.minimum(e2, 1.0) * source_pq)


def _bt2390_relative(nits: np.ndarray, peak: float) -> np.ndarray:
    return bt2390(nits, peak) / SDR_WHITE_NITS


def _hable_curve(x: np.ndarray | float) -> np.ndarray | float:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (x * a + b * c) + d * e) / (x * (x * a + b) + d * f) - e / f


def _hable(nits: np.ndarray, peak: float) -> np.ndarray:
    return np.asarray(_hable_curve(nits / SDR_WHITE_NITS)) / _hable_curve(peak / SDR_WHITE_NITS)


def _mobius(nits: np.ndarray, peak_nits: float) -> np.ndarray:
    x, peak, j = nits / SDR_WHITE_NITS, peak_nits / SDR_WHITE_NITS, MOBIUS_KNEE
    if peak <= 1:
        return np.minimum(x, 1.0)
    a = -j * j * (peak - 1) / (j * j - 2 * j + peak)
    b = (j * j - 2 * j * peak + peak) / (peak - 1)
    curved = (b * b + 2 * b * j + j * j) / (b - a) * (x + a) / (x + b)
    return np.where(x <= j, x, curved)


def _clip(nits: np.ndarray, _peak: float) -> np.ndarray:
    return np.minimum(nits / SDR_WHITE_NITS, 1.0)


_CURVES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "bt2390": _bt2390_relative, "hable": _hable, "mobius": _mobius, "clip": _clip,
}
