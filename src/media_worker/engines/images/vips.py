"""The libvips path: decode once, shrinking on load, straight to the largest thumbnail.

libvips' `thumbnail` reads only as much of the file as the largest box needs (JPEG DCT
scaling, WebP/HEIF scaled decode, SVG rendered at the target scale), applies the EXIF
orientation and, with `export_profile="srgb"`, converts an embedded ICC profile (or CMYK) to
sRGB in the same pass. Without that option libvips keeps the source profile, and once
metadata is stripped the pixels would be shown as sRGB with the wrong colours.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyvips

from media_worker.engines.color.detect_still import detect_still
from media_worker.engines.color.p3 import P3_PROFILE
from media_worker.engines.color.signal import Signal
from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.encode import Framing, largest_box, render_sizes, scale_for
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import (
    MAX_HEADER_PIXELS,
    check_header_pixels,
    check_held_pixels,
    check_pixels,
    header_of_vips,
    image_metadata,
    vips_header,
    vips_source,
)
from media_worker.engines.sniff import MediaType
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

# Samples per pixel a progressive JPEG keeps until its last scan, by chroma subsampling.
_JPEG_SAMPLES_PER_PIXEL = {"4:2:0": 1.5, "4:2:2": 2.0, "4:4:4": 3.0}
_BYTES_PER_DCT_COEFFICIENT = 2
_YUV_420_PLANES = 1.5  # bytes per pixel of libheif's own 8-bit 4:2:0 planes
MAX_JPEG_SHRINK = 8  # libjpeg's DCT scaling goes down to 1/8


def render_with_vips(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None, focus: Focus | None = None,
    page: int = 0, max_header_pixels: int = MAX_HEADER_PIXELS,
) -> RenderResult:
    """Raises pyvips.Error where libvips cannot decode the file (the caller decides). The
    decode covers the box of every `cover`/`smart` size (`largest_box`); `page` is the frame
    of an animation the stills show."""
    source = vips_source(path, media_type)
    header = vips_header(source)
    facts = header_of_vips(header)
    width, height = facts.upright
    box = largest_box(width, height, sizes)
    _check_limits(media_type, header, box, width, height, max_pixels=max_pixels,
                  max_header_pixels=max_header_pixels)
    framing = Framing(width, height, focus)
    signal = _signal(path, media_type, header)
    metadata = image_metadata(media_type, facts, gps=output.gps) | {"hdr": signal.to_metadata()}
    with admitted(budget, _decode_megabytes(media_type, header)):
        if signal.is_hdr:
            from media_worker.engines.images.hdr import decode_code_values, tone_mapped

            code, alpha = decode_code_values(_open(source), box, _bits(header))
            largest, picture = tone_mapped(code, alpha, signal, output)
            del code, alpha
            thumbnails = render_sizes(largest, sizes, output, hdr=picture, framing=framing)
        else:
            largest = _decode_fitted(source, media_type, box, width, height,
                                     profiles=_profiles(signal, header, output)
                                     | {"linear": output.resize_light == "linear"}, page=page)
            thumbnails = render_sizes(largest, sizes, output, framing=framing)
        del largest  # the decoder's buffers go with it, inside the admission
    return RenderResult(thumbnails, metadata)


def _signal(path: Path, media_type: MediaType, header: pyvips.Image) -> Signal:
    icc = header.get("icc-profile-data") if header.get_typeof("icc-profile-data") else None
    return detect_still(path, media_type, icc=icc,
                        gain_map=bool(header.get_typeof("gainmap-data")))


def _profiles(signal: Signal, header: pyvips.Image, output: OutputSpec) -> dict[str, str]:
    """The ICC import/export of the decode: none for an untagged sRGB picture (as before
    THUMBNAIL_COLOR existed); P3 kept under `keep-p3` (the compact built-in profile that
    encode.py keeps); a P3 picture that says so only by nclx (AVIF/HEIF, no ICC) converted
    from P3 rather than shown as sRGB."""
    keep_p3 = output.color == "keep-p3" and signal.primaries == "p3"
    tagged = _needs_colour_management(header)
    if tagged:
        return {"import_profile": "srgb", "export_profile": P3_PROFILE if keep_p3 else "srgb"}
    if signal.primaries == "p3":
        return {"import_profile": P3_PROFILE, "export_profile": P3_PROFILE if keep_p3 else "srgb"}
    return {}


def _open(source: str | bytes) -> pyvips.Image:
    if isinstance(source, bytes):
        return pyvips.Image.new_from_buffer(source, "", fail_on="none")
    return pyvips.Image.new_from_file(source, access="sequential", fail_on="none")


def _bits(header: pyvips.Image) -> int:
    return _header_int(header, "bits-per-sample") or (16 if header.format == "ushort" else 8)


def _decode_fitted(source: str | bytes, media_type: MediaType, box: ThumbnailSize,
                   width: int, height: int, *, profiles: dict[str, str], page: int = 0
                   ) -> pyvips.Image:
    """The picture decoded once, upright, in sRGB, fitted to `box` (`width`x`height` upright).

    Colour management only where `profiles` asks (an embedded profile, CMYK, a P3 picture that
    says so by nclx: `_profiles`): an untagged picture is sRGB already, and asking libvips to
    export sRGB anyway costs a full ICC transform (identical pixels; a large share of a
    photo's time, docs/performance.md). A JPEG is decoded at the smallest DCT scale that
    still covers the box, then resized: `thumbnail` keeps a 2x margin (a 12 MP photo for a
    1280 px box decodes at full size, where 1/2 is enough), and the explicit shrink costs
    less CPU for the same SSIM."""
    options: dict[str, Any] = {"height": box.height, "size": "down"}
    options |= profiles
    if isinstance(source, bytes):
        return pyvips.Image.thumbnail_buffer(source, box.width, **options)
    if page:  # a later frame of an animation (GIF, WebP): no shrink-on-load to lose
        frame = pyvips.Image.new_from_file(source, page=page, access="sequential",
                                           fail_on="none")
        return frame.thumbnail_image(box.width, **options)
    shrink = jpeg_shrink(width, height, box) if media_type.format == "jpeg" else 1
    if shrink == 1:
        return pyvips.Image.thumbnail(source, box.width, fail_on="none", **options)
    scaled = pyvips.Image.new_from_file(source, access="sequential", shrink=shrink,
                                        fail_on="none")
    return scaled.thumbnail_image(box.width, **options)


def _check_limits(media_type: MediaType, header: pyvips.Image, box: ThumbnailSize,
                  width: int, height: int, *, max_pixels: int, max_header_pixels: int) -> None:
    """MAX_PIXELS on the header, except where the decode never holds the whole picture: an
    SVG is rasterised at thumbnail size, and a baseline JPEG streams through libjpeg's DCT
    scaling, holding the picture at its shrink-on-load scale (what MAX_PIXELS then bounds)
    while MAX_HEADER_PIXELS bounds the header. A progressive JPEG keeps every coefficient of
    the whole picture until its last scan: the header counts."""
    if media_type.format == "svg":
        return
    if media_type.format != "jpeg" or _header_int(header, "jpeg-multiscan"):
        check_pixels(header.width, header.height, max_pixels)
        return
    check_header_pixels(header.width, header.height, max_header_pixels)
    shrink = jpeg_shrink(width, height, box)
    held = math.ceil(header.width / shrink) * math.ceil(header.height / shrink)
    check_held_pixels(header.width, header.height, held, max_pixels,
                      f"at 1/{shrink} scale")


def jpeg_shrink(width: int, height: int, box: ThumbnailSize) -> int:
    """The largest JPEG DCT scale-down (1, 2, 4 or 8) whose result still covers the thumbnail
    that `box` gives a `width`x`height` picture, so the resize after it only ever shrinks."""
    limit = 1 / scale_for(width, height, box)
    shrink = 1
    while shrink < MAX_JPEG_SHRINK and shrink * 2 <= limit:
        shrink *= 2
    return shrink


def _decode_megabytes(media_type: MediaType, header: pyvips.Image) -> int:
    """What the decode holds in memory when it cannot stream; 0 when it streams."""
    pixels = header.width * header.height
    if media_type.format == "jpeg" and _header_int(header, "jpeg-multiscan"):
        # every coefficient of every sample until the last scan
        if header.bands == 4:  # CMYK: four full-resolution components
            samples = 4.0
        elif header.bands >= 3:
            samples = _JPEG_SAMPLES_PER_PIXEL.get(
                _header_str(header, "jpeg-chroma-subsample"), 3.0)
        else:
            samples = 1.0
        return int(pixels * _BYTES_PER_DCT_COEFFICIENT * samples / MEGABYTE)
    if media_type.format == "avif":  # libheif decodes the whole picture, YUV planes and all
        return int(pixels * (header.bands + _YUV_420_PLANES) / MEGABYTE)
    if media_type.format == "png" and _header_int(header, "interlaced"):
        depth = 2 if header.format == "ushort" else 1
        return pixels * header.bands * depth // MEGABYTE
    return 0


def _needs_colour_management(header: pyvips.Image) -> bool:
    """Whether the pixels need converting to sRGB: they carry a profile, or are CMYK."""
    return bool(header.get_typeof("icc-profile-data")) or header.interpretation == "cmyk"


def _header_int(header: pyvips.Image, name: str) -> int:
    return int(header.get(name)) if header.get_typeof(name) else 0


def _header_str(header: pyvips.Image, name: str) -> str:
    return str(header.get(name)) if header.get_typeof(name) else ""
