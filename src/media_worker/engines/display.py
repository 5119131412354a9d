"""How a player turns a video frame: the display matrix, read as FFmpeg's autorotate does."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyvips

QUARTER_TURNS = (0, 90, 180, 270)
_MATRIX_BYTES = 36  # nine 32-bit integers, 16.16 fixed point


@dataclass(frozen=True)
class DisplayTransform:
    """What the display matrix asks of a player: `rotation` (clockwise degrees, as reported),
    whether the picture is also mirrored, and the libvips steps that do both."""

    rotation: int = 0
    mirrored: bool = False
    steps: tuple[str, ...] = ()  # "d90", "d180", "d270" (clockwise), "fliphor", "flipver"

    @property
    def swaps_sides(self) -> bool:
        """A quarter turn: the upright picture is as wide as the coded one is high."""
        return self.rotation in (90, 270)

    def apply(self, image: pyvips.Image) -> pyvips.Image:
        for step in self.steps:
            if step == "fliphor":
                image = image.fliphor()
            elif step == "flipver":
                image = image.flipver()
            else:
                image = image.rot(step)
        return image


def display_transform(frame: Any) -> DisplayTransform:
    """The rotation, plus a mirror where the matrix also reflects (e.g. [0 1; 1 0], a
    transpose). Angles other than quarter turns are shown as coded."""
    theta = round(-(frame.rotation or 0)) % 360  # frame.rotation is counter-clockwise
    if theta not in QUARTER_TURNS:
        return DisplayTransform()
    matrix = _display_matrix(frame)
    if matrix is None:
        return DisplayTransform(theta, steps=(f"d{theta}",) if theta else ())
    if theta == 90:
        transposed = matrix[3] > 0  # 90° anticlockwise + vertical flip ("cclock_flip")
        return DisplayTransform(90, transposed, ("d270", "flipver") if transposed else ("d90",))
    if theta == 270:
        flipped = matrix[3] < 0  # 90° clockwise + vertical flip ("clock_flip")
        return DisplayTransform(270, flipped, ("d90", "flipver") if flipped else ("d270",))
    steps = (*(("fliphor",) if theta == 180 and matrix[0] < 0 else ()),
             *(("flipver",) if matrix[4] < 0 else ()))
    mirrored = len(steps) == 1
    return DisplayTransform(theta, mirrored, steps)


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    """The 3x3 display matrix, or None. PyAV 18 cannot list a frame's side data when FFmpeg
    attached a type it does not know (MV-HEVC's view id): ValueError."""
    try:
        side_data = frame.side_data["DISPLAYMATRIX"]
    except (KeyError, ValueError):
        return None
    if side_data.buffer_size != _MATRIX_BYTES:
        return None
    return struct.unpack("=9i", bytes(side_data))
