"""Where `cover` and `smart` sizes crop: the window of the box's aspect inside the picture.

`cover` centres the window on the job's focus point (else the middle). `smart` centres it on
what libvips' attention finds interesting, then slides it so that every face the detector
found stays inside, when the window is large enough to hold them all. Both work in fractions
of the upright picture, so the interest is found once per job, on a small copy, and every
size's window follows from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from media_worker.renditions import Focus
from media_worker.types import Crop, ThumbnailSize


@dataclass(frozen=True)
class Box:
    """A rectangle in fractions (0..1) of the upright picture: left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Interest:
    """What a smart crop keeps: the attention centre and the faces (fractions)."""

    center: Focus = field(default_factory=lambda: Focus(0.5, 0.5))
    faces: list[Box] = field(default_factory=list)


def crop_window(width: int, height: int, size: ThumbnailSize, *,
                centre: Focus | None = None, faces: list[Box] | None = None) -> Crop:
    """The largest window of `size`'s aspect inside a `width`x`height` picture, centred on
    `centre` (fractions; the middle by default) as far as the edges allow, and moved so that
    it holds every face in `faces` where it can."""
    aspect = size.width / size.height
    crop_width = min(width, max(1, round(height * aspect)))
    crop_height = min(height, max(1, round(crop_width / aspect)))
    point = centre or Focus(0.5, 0.5)
    x = _place(point.x * width, crop_width, width,
               [(box.left * width, box.right * width) for box in faces or []])
    y = _place(point.y * height, crop_height, height,
               [(box.top * height, box.bottom * height) for box in faces or []])
    return Crop(x=x, y=y, width=crop_width, height=crop_height)


def output_size(crop: Crop, size: ThumbnailSize) -> tuple[int, int]:
    """Exactly the box, or the crop itself when it is smaller (never upscaled)."""
    if crop.width >= size.width and crop.height >= size.height:
        return size.width, size.height
    return crop.width, crop.height


def _place(centre: float, span: int, extent: int, keep: list[tuple[float, float]]) -> int:
    """The window's start on one axis: centred on `centre`, within the picture, and holding
    every (start, end) in `keep` when the window is long enough for all of them."""
    start = centre - span / 2
    if keep:
        lowest = max(end for _, end in keep) - span  # the window must reach the last end
        highest = min(begin for begin, _ in keep)  # and start before the first begins
        if lowest <= highest:
            start = min(max(start, lowest), highest)
        else:  # too many faces for this window: centre on all of them
            start = (min(begin for begin, _ in keep) + max(end for _, end in keep) - span) / 2
    return round(min(max(start, 0), extent - span))
