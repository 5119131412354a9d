"""What a video frame's code values mean: transfer, primaries, matrix and range (FFmpeg's
stream and frame fields, ITU-T H.273 code points), the mastering peak (content light level or
mastering display side data, or the MP4 `clli`/`mdcv` boxes), and Dolby Vision's configuration
record (`dvcC`/`dvvC`/`dvwC` in the MP4/MOV sample entry; elsewhere the profile the frame's
RPU implies).

No numpy here: every video is described, SDR ones too, and an SDR job must not load the colour
maths it does not need.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from media_worker.engines.color.cicp import MATRICES, PRIMARIES, TRANSFERS
from media_worker.engines.color.signal import Signal
from media_worker.engines.isobmff import BoxSource, video_sample_entry_boxes

# FFmpeg's AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace are ITU-T H.273's
# code points, named as the stills name them (cicp.py).
UNSPECIFIED = 2
MATRIX_BT2020NC = 9
RANGE_FULL = 2  # AVCOL_RANGE_JPEG; 1 (MPEG) and 0 (unspecified) are limited range
DOLBY_VISION_BOXES = ("dvcC", "dvvC", "dvwC")
# blSignalCompatibilityId → what the base layer is on its own (Dolby's profiles document):
# 1 HDR10, 2 SDR BT.709, 4 HLG, 6 HDR10 (Blu-ray); 0 none — IPTPQc2, meaningful only through
# the RPU's reshaping (profile 5, profile 10.0).
COMPATIBLE_BASE = {1: ("pq", "bt2020"), 2: ("sdr", "bt709"), 4: ("hlg", "bt2020"),
                   6: ("pq", "bt2020")}
# Peaks outside this are not taken from metadata (zeros and garbage are common).
PLAUSIBLE_PEAK_NITS = (100.0, 10_000.0)
_MASTERING_INTS = 22  # AVMasteringDisplayMetadata: 11 AVRationals (as int pairs) + 2 flags
_CLL_BYTES = 8  # AVContentLightMetadata: MaxCLL, MaxFALL (unsigned)


@dataclass(frozen=True)
class VideoColour:
    """A frame's signal, and how its YCbCr code values become RGB ones: `matrix_code` (H.273,
    after defaults), `full_range`; `luma_only` when the base layer has no standard meaning
    (Dolby Vision without a compatible base): only its first plane is shown, as PQ light."""

    signal: Signal
    matrix_code: int = 1
    full_range: bool = False
    luma_only: bool = False


def detect_video_colour(container: Any, stream: Any, frame: Any,
                        path: BoxSource) -> VideoColour:
    """The colour of `frame` of `stream`: the frame's own fields where the decoder set them
    (VP9 and AV1 signal them in the bitstream), else the stream's."""
    context = stream.codec_context
    trc = _field(frame, context, "color_trc")
    primaries = _field(frame, context, "color_primaries")
    matrix = _field(frame, context, "colorspace")
    full_range = _field(frame, context, "color_range") == RANGE_FULL
    boxes = path if _is_isobmff(container) else None
    dolby = dolby_vision_config(boxes) if boxes is not None else None
    if dolby is None:  # Matroska, or an MP4 muxed without the record
        dolby = dolby_vision_from_rpu(_side_data(frame, "DOVI_METADATA"))
    transfer = TRANSFERS.get(trc, "sdr")
    luma_only = False
    # None: no Dolby Vision, or known from the RPU only (the base's own fields say what it is)
    compatibility = None if dolby is None else dolby["blSignalCompatibilityId"]
    if compatibility in COMPATIBLE_BASE:
        if trc in (0, UNSPECIFIED):
            transfer, base_primaries = COMPATIBLE_BASE[compatibility]
            if primaries in (0, UNSPECIFIED):
                primaries = _code(base_primaries)
    elif compatibility is not None:
        transfer, luma_only = "pq", True  # IPTPQc2: its intensity is PQ-coded
        primaries = 9
    name = PRIMARIES.get(primaries, "other") if primaries not in (0, UNSPECIFIED) else None
    if name is None:  # unspecified: HDR is BT.2020 in practice, SDR BT.709
        name = "bt2020" if transfer != "sdr" else "bt709"
    if matrix not in MATRICES:
        matrix = MATRIX_BT2020NC if transfer != "sdr" else 1
    # HLG is scene light: its OOTF is for the display at hand, so no peak is taken from it.
    peak = content_peak(frame, boxes) if transfer == "pq" else None
    signal = Signal(transfer=transfer, primaries=name, matrix=MATRICES[matrix],
                    peak_nits=peak, dolby_vision=dolby)
    return VideoColour(signal, matrix, full_range, luma_only)


def parse_dolby_vision_config(body: bytes) -> dict[str, Any] | None:
    """A DOVIDecoderConfigurationRecord (the body of `dvcC`/`dvvC`/`dvwC`): version (8+8
    bits), profile (7), level (6), rpu/el/bl present flags (1 each), base-layer signal
    compatibility id (4), reserved."""
    if len(body) < 5:
        return None
    major, minor, packed, last = struct.unpack_from(">BBHB", body)
    return {
        "version": f"{major}.{minor}",
        "profile": packed >> 9,
        "level": (packed >> 3) & 0x3F,
        "rpuPresent": bool(packed & 0x4),
        "elPresent": bool(packed & 0x2),
        "blPresent": bool(packed & 0x1),
        "blSignalCompatibilityId": last >> 4,
    }


def dolby_vision_from_rpu(metadata: bytes | None) -> dict[str, Any] | None:
    """The profile a frame's parsed RPU (FFmpeg's AVDOVIMetadata side data) implies, where
    no configuration record says: the header (at the offset the struct's first field gives)
    has vdr_rpu_profile at byte 4, bl_video_full_range_flag at 10,
    el_spatial_resampling_filter_flag at 15 and disable_residual_flag at 16. RPU profile 0
    with a full-range base is profile 5 (no compatible base); 1 is profile 7 with a residual
    enhancement layer, else 8, whose base is told by its own colour fields."""
    if metadata is None or len(metadata) < 8:
        return None
    offset = struct.unpack_from("=Q" if len(metadata) >= 24 else "=I", metadata)[0]
    if offset + 17 > len(metadata):
        return None
    header = metadata[offset:offset + 17]
    if header[4] == 0 and header[10]:
        profile, compatibility = 5, 0
    elif header[4] == 1:
        profile, compatibility = (7 if header[15] and not header[16] else 8), None
    else:
        return None
    return {"profile": profile, "blSignalCompatibilityId": compatibility, "rpuPresent": True,
            "fromRpu": True}


def dolby_vision_config(path: BoxSource) -> dict[str, Any] | None:
    """The configuration record of the first video track that has one."""
    for entry in video_sample_entry_boxes(path):
        for box in DOLBY_VISION_BOXES:
            if box in entry.boxes:
                return parse_dolby_vision_config(entry.boxes[box])
    return None


def content_peak(frame: Any, path: BoxSource | None) -> float | None:
    """Nits the content reaches: MaxCLL, else the mastering display's peak (as FFmpeg's
    `tonemap` filter chooses), from the frame's side data (HEVC SEI, AV1 metadata OBUs), else
    from the MP4 sample entry's `clli`/`mdcv`; None when nothing plausible says."""
    max_cll, mastering = _frame_light_levels(frame)
    if (max_cll is None or mastering is None) and path is not None:
        box_cll, box_mastering = _box_light_levels(path)
        max_cll = max_cll if max_cll is not None else box_cll
        mastering = mastering if mastering is not None else box_mastering
    for nits in (max_cll, mastering):
        if nits is not None and PLAUSIBLE_PEAK_NITS[0] <= nits <= PLAUSIBLE_PEAK_NITS[1]:
            return float(nits)
    return None


def _frame_light_levels(frame: Any) -> tuple[float | None, float | None]:
    max_cll = mastering = None
    cll = _side_data(frame, "CONTENT_LIGHT_LEVEL")
    if cll is not None and len(cll) >= _CLL_BYTES:
        max_cll = float(struct.unpack_from("=I", cll)[0]) or None
    display = _side_data(frame, "MASTERING_DISPLAY_METADATA")
    if display is not None and len(display) >= 4 * _MASTERING_INTS:
        ints = struct.unpack_from(f"={_MASTERING_INTS}i", display)
        has_luminance = ints[21]
        numerator, denominator = ints[18], ints[19]  # max_luminance, after min_luminance
        if has_luminance and denominator > 0:
            mastering = numerator / denominator
    return max_cll, mastering


def _box_light_levels(path: BoxSource) -> tuple[float | None, float | None]:
    """`clli`: max_content_light_level (u16, nits), …; `mdcv`: 3 primaries and the white point
    (u16 pairs), max then min luminance (u32, 0.0001 nits)."""
    for entry in video_sample_entry_boxes(path):
        max_cll = mastering = None
        if len(entry.boxes.get("clli", b"")) >= 4:
            max_cll = float(struct.unpack_from(">H", entry.boxes["clli"])[0]) or None
        if len(entry.boxes.get("mdcv", b"")) >= 24:
            mastering = struct.unpack_from(">I", entry.boxes["mdcv"], 16)[0] / 10_000 or None
        return max_cll, mastering
    return None, None


def _side_data(frame: Any, kind: str) -> bytes | None:
    """One side data of a frame. PyAV 18 cannot list a frame's side data when FFmpeg attached
    a type it does not know, but looks a known one up (KeyError when absent)."""
    try:
        return bytes(frame.side_data[kind])
    except (KeyError, ValueError):
        return None


def _field(frame: Any, context: Any, name: str) -> int:
    """The frame's value, else the stream's where the frame's is unset (0, or 2 =
    unspecified; for the range only 0: its 2 means full range)."""
    unset = (0,) if name == "color_range" else (0, UNSPECIFIED)
    value = int(getattr(frame, name, 0) or 0)
    if value in unset:
        fallback = int(getattr(context, name, 0) or 0)
        value = value if fallback in unset else fallback
    return value


def _code(primaries: str) -> int:
    return next(code for code, name in PRIMARIES.items() if name == primaries)


def _is_isobmff(container: Any) -> bool:
    return "mp4" in (container.format.name or "")
