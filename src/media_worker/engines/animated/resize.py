"""Every frame of an animated size: the same crop window on each, each resized once, and
how many frames a job keeps.

libvips resizes an animation as one tall image, so its vertical filter reaches across the
edge between two frames: the last rows of each frame get some of the next one's first rows
(a faint line where the two differ). Resizing frame by frame avoids it but costs a few
libvips calls per frame, which at thumbnail sizes cost more than the pixels. Here a size
takes a fixed handful of calls whatever the frame count: horizontal work on the frames
stacked top to bottom (a horizontal filter stays within its row, so within its frame), then
the frames laid side by side (`grid`) for the vertical work, where a vertical filter stays
within its column, then back (a transpose, `grid`, a transpose).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from media_worker.engines.animated.frames import Frames
from media_worker.types import Crop


@dataclass(frozen=True)
class Window:
    """The part of each held frame a size shows: left, top, width, height."""

    left: int
    top: int
    width: int
    height: int


def kept_frames(total: int, outputs: list[tuple[int, int]], *, max_frames: int,
                max_pixels: int) -> int:
    """Frames every animated size of a job keeps: at most `max_frames`, and no more than keep
    the largest output within `max_pixels` (width x height x frames); at least one. One cut
    per job, so every animated size of an upload plays the same frames for the same time."""
    largest = max(width * height for width, height in outputs)
    return max(1, min(total, max_frames, max_pixels // largest))


def window_of(crop: Crop | None, frames: Frames, canvas: tuple[int, int]) -> Window:
    """`crop` (canvas pixels; None: the whole frame) on the frames as held."""
    if crop is None:
        return Window(0, 0, frames.width, frames.height)
    fx, fy = frames.width / canvas[0], frames.height / canvas[1]
    left = min(frames.width - 1, round(crop.x * fx))
    top = min(frames.height - 1, round(crop.y * fy))
    return Window(left, top, max(1, min(frames.width - left, round(crop.width * fx))),
                  max(1, min(frames.height - top, round(crop.height * fy))))


def resized_frames(frames: Frames, window: Window, target: tuple[int, int]) -> pyvips.Image:
    """The frames cropped to `window` and resized to exactly `target`, stacked top to
    bottom (`target[1]` rows each)."""
    strip, count, height = frames.strip, frames.count, frames.height
    width_out, height_out = target
    if (window.left, window.width) != (0, frames.width):
        strip = strip.extract_area(window.left, 0, window.width, strip.height)
    if window.width != width_out:
        strip = _scaled(strip, width_out / window.width, 1.0).copy_memory()
    if (window.top, window.height) == (0, height) and height == height_out:
        return strip
    wide = strip.grid(height, count, 1)  # frame i at x = i * width_out
    if (window.top, window.height) != (0, height):
        wide = wide.extract_area(0, window.top, wide.width, window.height)
    if window.height != height_out:
        wide = _scaled(wide, 1.0, height_out / window.height)
    wide = wide.copy_memory()  # the transposes read it out of order
    return _transposed(_transposed(wide).grid(width_out, count, 1))


def _scaled(image: pyvips.Image, hscale: float, vscale: float) -> pyvips.Image:
    """Resized with alpha premultiplied (a transparent pixel's colour must not spread)."""
    if not image.hasalpha():
        return image.resize(hscale, vscale=vscale)
    resized = image.premultiply().resize(hscale, vscale=vscale).unpremultiply()
    return resized.cast("uchar")


def _transposed(image: pyvips.Image) -> pyvips.Image:
    return image.rot90().fliphor()
