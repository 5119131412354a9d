"""What a picture's code values mean, and turning an HDR one into SDR pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and the maths load with the first HDR picture: SDR jobs never pay
    import numpy as np

# Without mastering metadata, PQ content is graded for a 1,000-nit display far more often than
# for PQ's theoretical 10,000; assuming the latter would darken every thumbnail tenfold.
DEFAULT_PQ_PEAK_NITS = 1_000.0


@dataclass(frozen=True)
class Signal:
    """Transfer (`pq`, `hlg`, `sdr`), primaries (`bt2020`, `p3`, `bt709`, or another name),
    the mastering peak when the file says it, Dolby Vision's configuration and whether a gain
    map rides along."""

    transfer: str = "sdr"
    primaries: str = "bt709"
    matrix: str | None = None
    peak_nits: float | None = None
    dolby_vision: dict[str, Any] | None = None
    gain_map: bool = False

    @property
    def is_hdr(self) -> bool:
        return self.transfer in ("pq", "hlg")

    def to_metadata(self) -> dict[str, Any]:
        """`metadata.hdr` of the row."""
        return {"transfer": self.transfer, "primaries": self.primaries,
                "dolbyVision": self.dolby_vision, "gainMap": self.gain_map}

    def source_peak(self) -> float:
        from media_worker.engines.color.transfer import HLG_NOMINAL_PEAK_NITS

        if self.peak_nits:
            return self.peak_nits
        return DEFAULT_PQ_PEAK_NITS if self.transfer == "pq" else HLG_NOMINAL_PEAK_NITS


@dataclass(frozen=True)
class HdrPicture:
    """An HDR original at thumbnail size, kept for outputs that carry its range (an Ultra HDR
    JPEG's gain map): display light in BT.709 primaries where 1.0 is SDR white (100 nits), so
    highlights run up to `peak`."""

    linear: np.ndarray  # (H, W, 3) float32
    peak: float


def hdr_to_sdr(code: np.ndarray, signal: Signal, curve: str = "bt2390") -> np.ndarray:
    """(H, W, 3) code values 0..1 of a PQ or HLG picture → (H, W, 3) uint8 sRGB."""
    return hdr_renditions(code, signal, curve)[0]


def hdr_renditions(code: np.ndarray, signal: Signal,
                   curve: str = "bt2390") -> tuple[np.ndarray, HdrPicture]:
    """The SDR picture (uint8 sRGB, tone-mapped with `curve`) and the HDR one it came from.

    Every per-pixel curve is a table lookup (lut.py); the exact curves build the tables."""
    import numpy as np

    from media_worker.engines.color.gamut import to_bt709
    from media_worker.engines.color.lut import to_srgb8, tone_ratio
    from media_worker.engines.color.tonemap import SDR_WHITE_NITS, brightest_channel

    peak = signal.source_peak()
    primaries = signal.primaries if signal.primaries in ("bt2020", "p3") else "bt709"
    bt709 = to_bt709(_display_light(code, signal), primaries)
    ratio = tone_ratio(brightest_channel(bt709), curve, peak)[..., None]
    relative = bt709 * ratio
    sdr = to_srgb8(relative)
    bt709 *= np.float32(1 / SDR_WHITE_NITS)
    return sdr, HdrPicture(bt709, peak / SDR_WHITE_NITS)


def _display_light(code: np.ndarray, signal: Signal) -> np.ndarray:
    from media_worker.engines.color.lut import code_index, hlg_display_light, pq_table
    from media_worker.engines.color.transfer import HLG_NOMINAL_PEAK_NITS

    if signal.transfer == "pq":
        return pq_table()[code_index(code)]
    if signal.transfer == "hlg":
        return hlg_display_light(code, signal.peak_nits or HLG_NOMINAL_PEAK_NITS)
    raise ValueError(f"not an HDR transfer: {signal.transfer}")
