"""From one decoded picture to every thumbnail size, encoded without metadata.

Shared by still images and video frames: the largest thumbnail is made first, then each other
size is derived from it (never from the full-size original again), and every output is stripped
of EXIF/XMP/IPTC so no GPS position or camera serial leaves the worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.p3 import carries_p3
from media_worker.engines.framing import Interest, crop_window, output_size
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.render_clock import encoding
from media_worker.renditions import Focus
from media_worker.types import Crop, FitMode, ThumbnailSize

if TYPE_CHECKING:  # the HDR maths load in a decoder only when an HDR original needs them
    from media_worker.engines.color.signal import HdrPicture

KEEP_NONE = 0  # libvips ForeignKeep.NONE: no EXIF, XMP, IPTC, ICC or other metadata
KEEP_ICC = 8  # ForeignKeep.ICC only: THUMBNAIL_COLOR=keep-p3 keeps its P3 profile (color/p3.py)
# WebP effort 2 rather than libwebp's default 4: about half the CPU per encode for a few percent
# more bytes at the same PSNR (docs/performance.md, encoder sweep); the encode is the largest
# single cost of a job, and effort 0 costs markedly more bytes.
WEBP_EFFORT = 2
MIME_TYPES = {
    ThumbnailFormat.WEBP: "image/webp",
    ThumbnailFormat.JPEG: "image/jpeg",
    ThumbnailFormat.AVIF: "image/avif",
    ThumbnailFormat.PNG: "image/png",
}


# `smart` sizes find the interest (libvips attention, faces) once per job on a copy of about
# this many pixels (320x240 for a 4:3 photo; by area, so a panorama's faces are not lost).
INTEREST_PIXELS = 320 * 240


@dataclass(frozen=True)
class Framing:
    """What crops are measured against: the upright original's size (a `cover`/`smart` crop
    is recorded in its pixels, whatever scale the picture was decoded at) and the job's focus
    point for `cover` sizes."""

    width: int
    height: int
    focus: Focus | None = None


def scale_for(width: int, height: int, size: ThumbnailSize) -> float:
    """The factor that fits a `width`x`height` picture in the box, never above 1 (no upscaling)."""
    return min(size.width / width, size.height / height, 1.0)


def needed_scale(width: int, height: int, size: ThumbnailSize) -> float:
    """The scale a size needs the picture decoded at: fitted inside its box (`fit`), or
    covering it (`cover`, `smart`: the crop of the box's aspect is then at least the box);
    never above 1."""
    if size.mode is FitMode.FIT:
        return scale_for(width, height, size)
    return min(max(size.width / width, size.height / height), 1.0)


def largest_box(width: int, height: int, sizes: list[ThumbnailSize]) -> ThumbnailSize:
    """The box to decode to: fitting the picture in it gives the largest scale any size needs.
    Judged by the scale it yields, not by the box's area: a wide 1000x100 box makes a smaller
    square thumbnail than a 300x300 box. When a `cover`/`smart` size needs the most, the box
    is the picture at the scale that covers that size's box."""
    best = max(sizes, key=lambda size: needed_scale(width, height, size))
    if best.mode is FitMode.FIT:
        return best
    scale = needed_scale(width, height, best)
    return ThumbnailSize(name=best.name, width=max(1, math.ceil(width * scale - 1e-6)),
                         height=max(1, math.ceil(height * scale - 1e-6)))


def render_from_image(
    image: pyvips.Image, sizes: list[ThumbnailSize], output: OutputSpec,
    framing: Framing | None = None,
) -> list[RenderedThumbnail]:
    """Thumbnails of a fully decoded, upright sRGB picture (Pillow decodes, video frames).
    `framing` names the original's upright size when `image` is a reduced copy of it."""
    box = largest_box(image.width, image.height, sizes)
    largest = image.thumbnail_image(box.width, height=box.height, size="down",
                                    linear=output.resize_light == "linear")
    return render_sizes(largest, sizes, output,
                        framing=framing or Framing(image.width, image.height))


def render_sizes(
    largest: pyvips.Image, sizes: list[ThumbnailSize], output: OutputSpec,
    hdr: HdrPicture | None = None, *, framing: Framing | None = None,
) -> list[RenderedThumbnail]:
    """Encode `largest` (already decoded at the scale the most demanding size needs:
    `largest_box`) and derive every size from it: `fit` sizes fitted, `cover`/`smart` sizes
    cropped to their box's aspect (crop windows measured on the upright original of
    `framing`, `largest` itself when absent) and resized. Returns thumbnails in the order of
    `sizes`. `hdr` is the HDR picture `largest` was tone-mapped from (same size): with
    HDR_OUTPUT=gainmap, each JPEG size becomes an Ultra HDR JPEG whose gain map brings it back
    to that picture (cropped with it)."""
    base = to_srgb8(largest).copy_memory()  # decoded once; every size reads this buffer
    framing = framing or Framing(base.width, base.height)
    linear = output.resize_light == "linear"
    stops = None
    if hdr is not None and output.hdr_output == "gainmap" and any(
            _format_of(size, output) is ThumbnailFormat.JPEG for size in sizes):
        from media_worker.engines.color.gainmap import log_gain

        stops = log_gain(hdr, base)
    interest = (interest_of(base) if any(size.mode is FitMode.SMART for size in sizes)
                else None)
    thumbnails = []
    for size in sizes:
        if size.mode is FitMode.FIT:
            with encoding(size.name):
                thumbnails.append(encode(fit(base, size, linear=linear), size, output,
                                         gain_stops=stops))
            continue
        if size.mode is FitMode.SMART and interest is not None:
            crop = crop_window(framing.width, framing.height, size, centre=interest.center,
                               faces=interest.faces)
        else:
            crop = crop_window(framing.width, framing.height, size, centre=framing.focus)
        window = _decoded_window(crop, framing, base)
        picture = cropped(base, window, output_size(crop, size), linear=linear)
        size_stops = None if stops is None else stops.extract_area(*window)
        with encoding(size.name):
            thumbnails.append(encode(picture, size, output, gain_stops=size_stops, crop=crop))
    return thumbnails


def _decoded_window(crop: Crop, framing: Framing, base: pyvips.Image
                    ) -> tuple[int, int, int, int]:
    """`crop` (upright original pixels) on the decoded picture: left, top, width, height."""
    fx, fy = base.width / framing.width, base.height / framing.height
    left = min(base.width - 1, round(crop.x * fx))
    top = min(base.height - 1, round(crop.y * fy))
    width = max(1, min(base.width - left, round(crop.width * fx)))
    height = max(1, min(base.height - top, round(crop.height * fy)))
    return left, top, width, height


def cropped(base: pyvips.Image, window: tuple[int, int, int, int], target: tuple[int, int],
            *, linear: bool = False) -> pyvips.Image:
    """The window of `base`, resized to exactly `target` (a pixel's rounding at most above
    the window: the window was measured on the original, which covers the box)."""
    picture = base.extract_area(*window)
    if (picture.width, picture.height) == target:
        return picture
    return picture.thumbnail_image(target[0], height=target[1], size="force", linear=linear)


def interest_of(base: pyvips.Image) -> Interest:
    """Where a `smart` crop centres, as fractions of the picture: libvips' attention centre,
    and the faces OpenCV finds; both on one copy of INTEREST_PIXELS, once per job. OpenCV
    and numpy load here only, for jobs with a `smart` size."""
    scale = math.sqrt(INTEREST_PIXELS / (base.width * base.height))
    small = base.thumbnail_image(  # a small original is enlarged: faces need ~24 px
        max(1, round(base.width * scale)), height=max(1, round(base.height * scale)),
        size="both")
    colour = small[:3] if small.bands >= 3 else small[0]  # attention and faces ignore alpha
    colour = colour.copy_memory()
    _, found = colour.smartcrop(1, 1, interesting="attention", attention_x=True,
                                attention_y=True)
    centre = Focus((found["attention_x"] + 0.5) / colour.width,
                   (found["attention_y"] + 0.5) / colour.height)
    return Interest(center=centre, faces=_faces(colour))


def _faces(image: pyvips.Image) -> list:
    import numpy as np

    from media_worker.engines.faces import find_faces

    grey = image.colourspace("b-w")[0] if image.bands >= 3 else image
    pixels = np.ndarray(buffer=grey.write_to_memory(), dtype=np.uint8,
                        shape=(grey.height, grey.width))
    return find_faces(pixels)


def to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (or 8-bit grey), alpha kept: what every encoder and viewer expects."""
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        target = "b-w" if image.interpretation in ("b-w", "grey16") else "srgb"
        image = image.colourspace(target)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def fit(image: pyvips.Image, size: ThumbnailSize, *, linear: bool = False) -> pyvips.Image:
    """Fit inside the box, aspect kept, never upscaled. `linear` (RESIZE_LIGHT=linear) averages
    light rather than sRGB code values: libvips goes through scRGB around the resize."""
    if image.width <= size.width and image.height <= size.height:
        return image
    return image.thumbnail_image(size.width, height=size.height, size="down", linear=linear)


def _format_of(size: ThumbnailSize, output: OutputSpec) -> ThumbnailFormat:
    if size.animated and not size.format:  # animated sizes are WebP, animated or not
        return ThumbnailFormat.WEBP
    return ThumbnailFormat(size.format) if size.format else output.format


def encode(image: pyvips.Image, size: ThumbnailSize, output: OutputSpec,
           gain_stops: pyvips.Image | None = None, crop: Crop | None = None
           ) -> RenderedThumbnail:
    """Encode one thumbnail in the configured format, metadata stripped. A JPEG given
    `gain_stops` (HDR over SDR light, see color/gainmap.py) is written as Ultra HDR."""
    if size.format == "gif":  # an animated size of a still original: one frame, as asked
        return RenderedThumbnail(size=size, width=image.width, height=image.height,
                                 format="gif", mime_type="image/gif", crop=crop,
                                 data=image.gifsave_buffer(keep=KEEP_NONE), kind="image")
    fmt = _format_of(size, output)
    quality = size.quality or output.quality
    keep = KEEP_ICC if output.color == "keep-p3" and carries_p3(image) else KEEP_NONE
    if fmt is ThumbnailFormat.JPEG:
        if image.hasalpha():
            background = [float(v) for v in output.background]
            image = image.flatten(background=background[: image.bands - 1])
        if gain_stops is not None and image.bands == 3:
            from media_worker.engines.color.gainmap import ultra_hdr_jpeg

            data = ultra_hdr_jpeg(image, gain_stops, quality)
        else:
            data = image.jpegsave_buffer(Q=quality, keep=keep, optimize_coding=True)
    elif fmt is ThumbnailFormat.AVIF:
        data = image.heifsave_buffer(Q=quality, compression="av1", keep=keep, effort=2)
    elif fmt is ThumbnailFormat.PNG:
        data = image.pngsave_buffer(keep=keep, compression=6)
    else:
        data = image.webpsave_buffer(Q=quality, keep=keep, effort=WEBP_EFFORT)
    return RenderedThumbnail(size=size, width=image.width, height=image.height,
                             format=fmt.value, mime_type=MIME_TYPES[fmt], data=data,
                             kind="image", crop=crop)
