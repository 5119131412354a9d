"""From one decoded picture to every thumbnail size, encoded without metadata.

Shared by still images and video frames: the largest thumbnail is made first, then each other
size is derived from it (never from the full-size original again), and every output is stripped
of EXIF/XMP/IPTC so no GPS position or camera serial leaves the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.p3 import carries_p3
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.types import ThumbnailSize

if TYPE_CHECKING:  # numpy loads in a decoder only when an HDR original needs it
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


def scale_for(width: int, height: int, size: ThumbnailSize) -> float:
    """The factor that fits a `width`x`height` picture in the box, never above 1 (no upscaling)."""
    return min(size.width / width, size.height / height, 1.0)


def largest_box(width: int, height: int, sizes: list[ThumbnailSize]) -> ThumbnailSize:
    """The box giving this picture its biggest thumbnail. Judged by the scale it yields, not by
    the box's area: a wide 1000x100 box makes a smaller square thumbnail than a 300x300 box."""
    return max(sizes, key=lambda size: scale_for(width, height, size))


def render_from_image(
    image: pyvips.Image, sizes: list[ThumbnailSize], output: OutputSpec
) -> list[RenderedThumbnail]:
    """Thumbnails of a fully decoded, upright sRGB picture (Pillow decodes, video frames)."""
    box = largest_box(image.width, image.height, sizes)
    largest = image.thumbnail_image(box.width, height=box.height, size="down",
                                    linear=output.resize_light == "linear")
    return render_sizes(largest, sizes, output)


def render_sizes(
    largest: pyvips.Image, sizes: list[ThumbnailSize], output: OutputSpec,
    hdr: HdrPicture | None = None,
) -> list[RenderedThumbnail]:
    """Encode `largest` (already fitted to the box that yields the biggest thumbnail) and derive
    the other sizes from it. Returns thumbnails in the order of `sizes`. `hdr` is the HDR
    picture `largest` was tone-mapped from (same size): with HDR_OUTPUT=gainmap, each JPEG size
    becomes an Ultra HDR JPEG whose gain map brings it back to that picture."""
    base = to_srgb8(largest).copy_memory()  # decoded once; every size reads this buffer
    linear = output.resize_light == "linear"
    stops = None
    if hdr is not None and output.hdr_output == "gainmap" and any(
            _format_of(size, output) is ThumbnailFormat.JPEG for size in sizes):
        from media_worker.engines.color.gainmap import log_gain

        stops = log_gain(hdr, base)
    return [encode(fit(base, size, linear=linear), size, output, gain_stops=stops)
            for size in sizes]


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
    return ThumbnailFormat(size.format) if size.format else output.format


def encode(image: pyvips.Image, size: ThumbnailSize, output: OutputSpec,
           gain_stops: pyvips.Image | None = None) -> RenderedThumbnail:
    """Encode one thumbnail in the configured format, metadata stripped. A JPEG given
    `gain_stops` (HDR over SDR light, see color/gainmap.py) is written as Ultra HDR."""
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
                             format=fmt.value, mime_type=MIME_TYPES[fmt], data=data)
