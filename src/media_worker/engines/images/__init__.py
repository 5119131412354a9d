"""Still images: libvips with shrink-on-load (`vips.py`), and Pillow + pillow-heif
(`pillow.py`) where libvips has no loader in pyvips-binary (HEIC/HEVC, BMP, ICO, animated AVIF)
or gives up on damaged data; a grid HEIC tile by tile (`heic_tiles.py`). Each reads the header
through `engines/probe.py` first, so the pixel limits are enforced before any pixel is
decoded. An animated original goes through `animated.py`, which renders its still sizes here,
at its first visible frame.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pyvips
from PIL import UnidentifiedImageError

from media_worker.engines.animated.probe import AnimationFacts, animation_of
from media_worker.engines.decode_budget import DecodeBudget
from media_worker.engines.decode_errors import decode_error, vips_detail
from media_worker.engines.images.animated import render_animation
from media_worker.engines.images.heic_tiles import render_tiled_heic
from media_worker.engines.images.pillow import render_with_pillow
from media_worker.engines.images.vips import render_with_vips
from media_worker.engines.motion_photo import with_motion_photo
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import MAX_HEADER_PIXELS, jxl_plugin_loaded, libvips_loads
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, UnsupportedMediaError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

# Where libvips fails, Pillow may still recover a picture: libjpeg gives up on some damaged
# scans (restart markers out of order) that Pillow decodes. Only for mature Pillow decoders.
SECOND_CHANCE = frozenset({"jpeg", "png", "gif", "avif"})


def render_image(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None = None, focus: Focus | None = None,
    max_header_pixels: int = MAX_HEADER_PIXELS,
) -> RenderResult:
    """Thumbnails and metadata of a still image. A decode that cannot stream waits for its
    share of `budget` (see decode_budget.py). `focus` centres `cover` crops. MAX_PIXELS
    bounds what a decode holds (the whole picture, unless it streams or tiles);
    `max_header_pixels` bounds the header of those that stream or tile."""
    if media_type.format == "jxl" and not jxl_plugin_loaded():
        raise UnsupportedMediaError(
            "JPEG XL is not supported: no JPEG XL decoder is installed (pillow-jxl-plugin)")
    animation = _animation(path, media_type)
    still = partial(_render_still, path, media_type, output=output, max_pixels=max_pixels,
                    max_header_pixels=max_header_pixels, budget=budget, focus=focus)
    if animation is not None:
        return render_animation(path, media_type, animation, sizes, output,
                                max_pixels=max_pixels, budget=budget, focus=focus, still=still)
    return with_motion_photo(path, media_type, still(sizes, 0), output, max_pixels=max_pixels)


def _animation(path: Path, media_type: MediaType) -> AnimationFacts | None:
    """The animation, or None: a still, or a header the still path will explain."""
    try:
        return animation_of(path, media_type)
    except (pyvips.Error, OSError, UnidentifiedImageError, ValueError, EOFError):
        return None


def _render_still(path: Path, media_type: MediaType, sizes: list[ThumbnailSize], page: int,
                  *, output: OutputSpec, max_pixels: int, max_header_pixels: int,
                  budget: DecodeBudget | None, focus: Focus | None) -> RenderResult:
    """libvips, or Pillow where libvips has no loader or gives up; a grid HEIC tile by tile
    where it can be; `page` is the frame."""
    options = {"max_pixels": max_pixels, "budget": budget, "focus": focus, "page": page}
    if media_type.format == "heic" and not page:
        tiled = render_tiled_heic(path, media_type, sizes, output, max_pixels=max_pixels,
                                  max_header_pixels=max_header_pixels, budget=budget,
                                  focus=focus)
        if tiled is not None:
            return tiled
    if not libvips_loads(media_type):
        return render_with_pillow(path, media_type, sizes, output, **options)
    try:
        return render_with_vips(path, media_type, sizes, output,
                                max_header_pixels=max_header_pixels, **options)
    except pyvips.Error as exc:
        vips_failure = CorruptMediaError(decode_error(media_type, vips_detail(exc), path))
        vips_said_why = bool((exc.detail or "").strip())
    if media_type.format not in SECOND_CHANCE:
        raise vips_failure
    try:
        return render_with_pillow(path, media_type, sizes, output, **options)
    except CorruptMediaError as pillow_failure:
        raise (vips_failure if vips_said_why else pillow_failure) from None
