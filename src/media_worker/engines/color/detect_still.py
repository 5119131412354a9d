"""The signal of a still image: transfer (PQ, HLG or SDR), primaries, matrix, peak and gain map,
from what the file says about its pixels.

Sources, strongest first:
1. H.273 code points: HEIF/AVIF `colr` nclx, PNG `cICP`, an ICC v4.4 profile's `cicp` tag.
   Only these can say PQ or HLG.
2. An ICC profile's colorants (Display P3 from an iPhone, Adobe RGB, BT.2020 …).
3. Nothing: sRGB, as every viewer assumes.

A gain map (Ultra HDR / ISO 21496-1 JPEG, Apple and Samsung HEIC auxiliary images, AVIF `tmap`)
rides beside an SDR base picture that is already the camera's SDR rendition: the signal stays
`sdr` and only `gain_map` says so, so the base is thumbnailed as it is. An AVIF whose *base* is
PQ (with a gain map to go down to SDR) is `pq`: that base needs tone mapping.

No numpy and no decoding: this runs for every still, before any pixel is decoded.
"""

from __future__ import annotations

from pathlib import Path

from media_worker.engines.color.cicp import matrix_name, primaries_name, transfer_name
from media_worker.engines.color.containers import (
    NOTHING,
    ContainerColour,
    heif_colour,
    png_colour,
)
from media_worker.engines.color.icc import IccFacts, read_icc
from media_worker.engines.color.signal import Signal
from media_worker.engines.sniff import MediaType

HEIF_FORMATS = frozenset({"heic", "avif"})


def container_colour(path: Path, media_type: MediaType) -> ContainerColour:
    """What the container says besides the decoder: HEIF/AVIF item properties, PNG chunks."""
    if media_type.format in HEIF_FORMATS:
        return heif_colour(path)
    if media_type.format == "png":
        return png_colour(path)
    return NOTHING


def detect_still(path: Path, media_type: MediaType, *, icc: bytes | None = None,
                 gain_map: bool = False) -> Signal:
    """The signal of the still at `path`. `icc` is the profile the decoder found (libvips'
    `icc-profile-data`, Pillow's `icc_profile`), `gain_map` whether the decoder found one
    (libvips' `gainmap-data` for Ultra HDR and Apple JPEGs)."""
    container = container_colour(path, media_type)
    return signal_of(container, icc or container.icc, gain_map=gain_map)


def signal_of(container: ContainerColour, icc: bytes | None, *, gain_map: bool = False
              ) -> Signal:
    """The signal from a container's facts and the picture's ICC profile."""
    gain_map = gain_map or container.gain_map
    peak = container.max_cll or container.mastering_peak
    profile = read_icc(icc) if icc else None
    nclx = container.nclx
    if nclx is not None and transfer_name(nclx.transfer) != "sdr":
        return Signal(transfer_name(nclx.transfer), primaries_name(nclx.primaries),
                      matrix_name(nclx.matrix), _peak(nclx.transfer, peak), gain_map=gain_map)
    if profile is not None and profile.transfer is not None:  # the ICC `cicp` tag
        return _from_profile(profile, peak, gain_map)
    if profile is not None:
        matrix = matrix_name(nclx.matrix) if nclx is not None else None
        return Signal("sdr", profile.primaries, matrix, gain_map=gain_map)
    if nclx is not None:
        return Signal("sdr", primaries_name(nclx.primaries), matrix_name(nclx.matrix),
                      gain_map=gain_map)
    return Signal(gain_map=gain_map)


def _from_profile(profile: IccFacts, peak: float | None, gain_map: bool) -> Signal:
    transfer = profile.transfer or "sdr"
    return Signal(transfer, profile.primaries, profile.matrix,
                  peak if transfer == "pq" else None, gain_map=gain_map)


def _peak(transfer: int, peak: float | None) -> float | None:
    """The source peak for tone mapping: PQ only (HLG is relative to the display, whose
    nominal peak its OOTF assumes); MaxCLL, else the mastering display's peak."""
    return peak if transfer_name(transfer) == "pq" else None
