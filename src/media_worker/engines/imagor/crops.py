"""`cover` and `smart` sizes in imagor's protocol (imagor, imagorvideo and Thumbor read it
alike): a plain `WxH` without `fit-in` fills the box, cropping to its aspect, centred;
`focal(LxT:RxB)` moves that crop to a focus point; `/smart/` lets the service's own detector
place it.

The URL asks for the box, or for the crop itself when the original is smaller (the services
would otherwise upscale to fill the box). A `cover` crop is recorded as the window the worker
computes from the original's upright size (centred, or on the focus and clamped at the
edges, which is how both services place a crop around one focal region). A `smart` crop is
the service's choice and is not recorded.
"""

from __future__ import annotations

from media_worker.engines.framing import crop_window, output_size
from media_worker.engines.imagor.url import Filter, ImagorParams, focal_region
from media_worker.renditions import Focus
from media_worker.types import Crop, FitMode, ThumbnailSize


def size_request(image: str, size: ThumbnailSize, upright: tuple[int, int] | None,
                 focus: Focus | None, filters: tuple[Filter, ...]
                 ) -> tuple[ImagorParams, Crop | None]:
    """The parameters that render `size` of an original `upright` (width, height; None when
    unknown), and the crop recorded for it."""
    if size.mode is FitMode.FIT:
        return ImagorParams(image=image, fit_in=True, width=size.width, height=size.height,
                            filters=filters), None
    if upright is None:
        return ImagorParams(image=image, width=size.width, height=size.height,
                            smart=size.mode is FitMode.SMART, filters=filters), None
    width, height = upright
    if size.mode is FitMode.SMART:  # focus is for cover only
        window = crop_window(width, height, size)
        out_w, out_h = output_size(window, size)
        return ImagorParams(image=image, width=out_w, height=out_h, smart=True,
                            filters=filters), None
    crop = crop_window(width, height, size, centre=focus)
    out_w, out_h = output_size(crop, size)
    if focus is not None:
        left = min(width - 1, int(focus.x * width))
        top = min(height - 1, int(focus.y * height))
        filters = (*filters, focal_region(left, top, left + 1, top + 1))
    return ImagorParams(image=image, width=out_w, height=out_h, filters=filters), crop


def expected_size(width: int, height: int, size: ThumbnailSize) -> tuple[int, int]:
    """What a service answers for `size` of a `width`x`height` upright original."""
    if size.mode is FitMode.FIT:
        scale = min(size.width / width, size.height / height, 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return output_size(crop_window(width, height, size), size)
