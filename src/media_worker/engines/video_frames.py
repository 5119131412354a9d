"""A video frame as a player shows it: at display aspect (non-square pixels stretched), turned
by the display matrix, 8-bit sRGB, HDR tone-mapped to SDR; scaled by FFmpeg straight to the
size wanted, so a clip or a storyboard never holds a full-size frame in RGB.

The still thumbnail, the preview clip and the storyboard all draw their pictures here, so a
rotated, anamorphic or HDR video looks the same in each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pyvips

from media_worker.engines.display import DisplayTransform, display_transform
from media_worker.engines.probe import display_size

if TYPE_CHECKING:
    from media_worker.engines.color.detect_video import VideoColour


@dataclass(frozen=True)
class Fitted:
    """A picture size: `upright` as shown, `coded` the same before the display matrix turns
    it (the sides swapped by a quarter turn)."""

    upright: tuple[int, int]
    coded: tuple[int, int]


@dataclass(frozen=True)
class FramePainter:
    """How every frame of one stream becomes a picture: its pixel aspect, the display matrix
    of its representative frame (one transform for all, so every picture has one size), and
    its colour (None or SDR: the 8-bit path, no numpy)."""

    sar: Fraction
    transform: DisplayTransform
    colour: VideoColour | None = None
    tonemap: str = "bt2390"

    def fit(self, frame: Any, box: tuple[int, int], *, even: bool = False) -> Fitted:
        """The frame's upright display size fitted inside `box`, never upscaled; `even`
        rounds both sides down to even numbers (H.264 in 4:2:0)."""
        width, height = display_size(frame.width, frame.height, self.sar)
        if self.transform.swaps_sides:
            width, height = height, width
        scale = min(box[0] / width, box[1] / height, 1.0)
        upright = (max(1, round(width * scale)), max(1, round(height * scale)))
        if even:
            upright = (max(2, upright[0] // 2 * 2), max(2, upright[1] // 2 * 2))
        coded = upright[::-1] if self.transform.swaps_sides else upright
        return Fitted(upright, coded)

    @property
    def shows_as_coded(self) -> bool:
        """SDR with nothing to turn: the coded picture, scaled to display aspect, is what a
        player shows (so a clip can take it from FFmpeg in YCbCr, never made RGB)."""
        hdr = self.colour is not None and self.colour.signal.is_hdr
        return not hdr and not self.transform.steps

    def paint(self, frame: Any, fitted: Fitted) -> pyvips.Image:
        """The frame as an upright 8-bit sRGB picture of exactly `fitted.upright`."""
        if self.colour is not None and self.colour.signal.is_hdr:
            from media_worker.engines.video_hdr import tone_mapped_picture

            return tone_mapped_picture(frame, self.colour, fitted.coded, self.transform,
                                       self.tonemap)
        width, height = fitted.coded
        rgb = frame.reformat(width=width, height=height, format="rgb24",
                             interpolation="BICUBIC")
        raw = packed_rows(rgb.planes[0], width * 3, height)
        image = pyvips.Image.new_from_memory(raw, width, height, 3, "uchar")
        return self.transform.apply(image.copy(interpretation="srgb"))


def upright_image(frame: Any, sar: Fraction) -> tuple[pyvips.Image, DisplayTransform]:
    """An SDR frame at full display size, turned the way the player shows it."""
    painter = FramePainter(sar, display_transform(frame))
    coded = display_size(frame.width, frame.height, sar)
    upright = coded[::-1] if painter.transform.swaps_sides else coded
    return painter.paint(frame, Fitted(upright, coded)), painter.transform


def packed_rows(plane: Any, row_bytes: int, rows: int) -> bytes:
    """A plane's pixels without the padding FFmpeg adds at the end of each line."""
    raw = bytes(plane)
    stride = plane.line_size
    if stride == row_bytes:
        return raw[: row_bytes * rows]
    return b"".join(raw[y * stride:y * stride + row_bytes] for y in range(rows))
