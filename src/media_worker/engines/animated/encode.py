"""Animated WebP (the default) or GIF (when a size asks for it), with the frames' delays and
the loop count of the original, and no metadata (as for stills)."""

from __future__ import annotations

import pyvips

from media_worker.engines.encode import KEEP_NONE, WEBP_EFFORT
from media_worker.engines.port import OutputSpec
from media_worker.types import ThumbnailSize

MIME_TYPES = {"webp": "image/webp", "gif": "image/gif"}
# libimagequant's fastest palette search: a fraction of the default effort's CPU per frame
# for about the same bytes (docs/performance.md, animated thumbnails).
GIF_EFFORT = 1


def animation_format(size: ThumbnailSize) -> str:
    """GIF when the size says so, else WebP: JPEG, PNG and AVIF do not animate here, and an
    animated size is refused with them (ThumbnailSize.parse)."""
    return "gif" if size.format == "gif" else "webp"


def encode_animation(strip: pyvips.Image, *, page_height: int, delays: tuple[int, ...],
                     loop: int, size: ThumbnailSize, output: OutputSpec) -> bytes:
    """`strip`: the frames stacked top to bottom, `page_height` rows each."""
    image = strip.copy()
    image.set_type(pyvips.GValue.gint_type, "page-height", page_height)
    image.set_type(pyvips.GValue.array_int_type, "delay", list(delays))
    image.set_type(pyvips.GValue.gint_type, "loop", loop)
    if animation_format(size) == "gif":
        return bytes(image.gifsave_buffer(keep=KEEP_NONE, effort=GIF_EFFORT))
    return bytes(image.webpsave_buffer(Q=size.quality or output.quality, effort=WEBP_EFFORT,
                                       keep=KEEP_NONE))
