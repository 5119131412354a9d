"""The Pillow path: formats libvips has no loader for (HEIC, BMP, ICO, animated AVIF, JPEG XL)
and damaged files libvips gives up on. Pillow decodes the whole picture (at its JPEG draft
scale at best), so the decode is reduced to about the largest thumbnail before anything else
touches it, then handed to libvips for resizing and encoding.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyvips
from PIL import Image, ImageCms, ImageOps

from media_worker.engines.color.detect_still import detect_still
from media_worker.engines.color.p3 import ICC_FIELD, p3_profile_bytes
from media_worker.engines.color.signal import Signal
from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.decode_errors import decode_error
from media_worker.engines.encode import (
    Framing,
    largest_box,
    needed_scale,
    render_from_image,
    render_sizes,
)
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import (
    ORIENTATION_SWAPS,
    ImageHeader,
    check_pixels,
    header_of_pillow,
    image_metadata,
    open_with_pillow,
)
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, LimitExceededError, MediaWorkerError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

_RGBA_BYTES = 4
_HEIF_YUV_BYTES = 1.5  # libheif's own 8-bit 4:2:0 planes, beside Pillow's copy
_HDR_BYTES_PER_PIXEL = 3 * 6  # 16-bit RGB(A): libheif's planes, pillow-heif's, libvips' copy


def render_with_pillow(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None, focus: Focus | None = None,
    page: int = 0,
) -> RenderResult:
    """`page` is the frame of an animation the stills show."""
    try:
        with open_with_pillow(path, media_type) as opened:
            header = header_of_pillow(opened)
            check_pixels(opened.width, opened.height, max_pixels)
            if page:
                opened.seek(page)
            signal = detect_still(path, media_type, icc=opened.info.get("icc_profile"),
                                  gain_map=_has_gain_map(opened))
            metadata = (image_metadata(media_type, header, gps=output.gps)
                        | {"hdr": signal.to_metadata()})
            framing = Framing(*header.upright, focus)
            if signal.is_hdr:
                return _render_hdr(path, opened, header, signal, sizes=sizes, output=output,
                                   metadata=metadata, budget=budget, framing=framing)
            _shrink_on_load(opened, sizes)
            with admitted(budget, _decode_megabytes(opened)):
                reduced = _reduce_to_largest(opened, sizes,
                                             swapped=header.orientation in ORIENTATION_SWAPS)
                keep_p3 = output.color == "keep-p3" and signal.primaries == "p3"
                pixels, has_alpha = srgb_pixels(ImageOps.exif_transpose(reduced),
                                                keep_p3=keep_p3)
                del reduced
    except MediaWorkerError:
        raise
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"image refused as a decompression bomb: {exc}") from None
    except Exception as exc:  # fuzzed files make Pillow raise anything (TypeError, …)
        raise CorruptMediaError(decode_error(media_type, str(exc) or type(exc).__name__,
                                             path)) from None
    return render_srgb(pixels, sizes, output, framing, metadata | {"hasAlpha": has_alpha},
                       keep_p3=keep_p3)


def render_srgb(pixels: Image.Image, sizes: list[ThumbnailSize], output: OutputSpec,
                framing: Framing, metadata: dict[str, Any], *, keep_p3: bool) -> RenderResult:
    """The thumbnails of a reduced, upright picture from `srgb_pixels`, encoded by libvips."""
    image = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height,
                                         len(pixels.getbands()), "uchar")
    image = image.copy(interpretation="srgb")
    if keep_p3 and pixels.info.get("icc_profile") == p3_profile_bytes():
        image.set_type(pyvips.GValue.blob_type, ICC_FIELD, p3_profile_bytes())
    return RenderResult(render_from_image(image, sizes, output, framing), metadata)


def _render_hdr(path: Path, opened: Image.Image, header: ImageHeader, signal: Signal, *,
                sizes: list[ThumbnailSize], output: OutputSpec, metadata: dict[str, Any],
                budget: DecodeBudget | None, framing: Framing) -> RenderResult:
    """A PQ or HLG still: HEIF decoded by pillow-heif at its full depth (Pillow's own HEIF
    and AVIF images are 8-bit), reduced and tone-mapped at the largest thumbnail's size."""
    from media_worker.engines.images.hdr import decode_code_values, tone_mapped

    width, height = header.upright
    box = largest_box(width, height, sizes)
    with admitted(budget, _hdr_decode_megabytes(opened)):
        decoded, bits = _full_depth(path, opened)
        if header.orientation != 1:
            decoded = decoded.copy()
            decoded.set_type(pyvips.GValue.gint_type, "orientation", header.orientation)
        code, alpha = decode_code_values(decoded, box, bits)
        del decoded
    largest, picture = tone_mapped(code, alpha, signal, output)
    thumbnails = render_sizes(largest, sizes, output, hdr=picture, framing=framing)
    return RenderResult(thumbnails, metadata | {"hasAlpha": alpha is not None})


def _full_depth(path: Path, opened: Image.Image) -> tuple[pyvips.Image, int]:
    """The primary picture as a libvips image, 16-bit where the file is deeper than 8."""
    import numpy as np

    if opened.format == "HEIF":
        from pillow_heif import open_heif

        heif = open_heif(path, convert_hdr_to_8bit=False)
        return pyvips.Image.new_from_array(np.asarray(heif)), int(heif.info["bit_depth"])
    rgb = opened.convert("RGBA" if opened.has_transparency_data else "RGB")
    return pyvips.Image.new_from_array(np.asarray(rgb)), 8


def _hdr_decode_megabytes(image: Image.Image) -> int:
    """16-bit samples three times over: libheif's planes, its interleaved RGB, libvips' copy."""
    return int(image.width * image.height * _HDR_BYTES_PER_PIXEL / MEGABYTE)


def _has_gain_map(image: Image.Image) -> bool:
    """A gain map the container does not show (HEIF/AVIF items are read by detect_still): a
    JPEG's Ultra HDR or Apple gain map, seen by Pillow as a second MPF picture."""
    if image.format not in ("JPEG", "MPO"):
        return False
    if _names_gain_map(image.info.get("xmp")):  # Ultra HDR: hdrgm:Version on the primary
        return True
    if image.format != "MPO" or getattr(image, "n_frames", 1) < 2:
        return False
    try:  # Apple: the second picture's XMP is HDRGainMap's (a stereo MPO's is not)
        image.seek(1)
        return _names_gain_map(image.info.get("xmp"))
    finally:
        image.seek(0)


def _names_gain_map(xmp: bytes | None) -> bool:
    return bool(xmp) and (b"hdrgm:" in xmp or b"HDRGainMap" in xmp)  # type: ignore[operator]


def _decode_megabytes(image: Image.Image) -> int:
    """Pillow decodes the whole picture (at its draft scale): 8-bit RGB(A), plus libheif's
    own YUV planes for HEIF."""
    per_pixel = _RGBA_BYTES + (_HEIF_YUV_BYTES if image.format == "HEIF" else 0)
    return int(image.width * image.height * per_pixel / MEGABYTE)


def _shrink_on_load(image: Image.Image, sizes: list[ThumbnailSize]) -> None:
    """JPEG can decode at 1/2, 1/4 or 1/8 scale; ask for no less than the biggest box needs
    (a square of its longest side: at least what a `cover` crop of that box needs)."""
    if image.format == "JPEG":
        edge = max(max(size.width, size.height) for size in sizes)
        image.draft("RGB", (edge, edge))


def _reduce_to_largest(image: Image.Image, sizes: list[ThumbnailSize], *,
                       swapped: bool) -> Image.Image:
    """Box-reduce by the largest integer factor that still leaves the biggest thumbnail's
    pixels, so colour management, transposition and the copy to libvips handle ~2 MP instead
    of a phone photo's 12 MP (less CPU and memory per HEIC job: docs/performance.md).
    Judged on the size as loaded (after any JPEG draft scaling), upright when `swapped`.
    Only without alpha, not even a transparent key colour: `reduce` would blend it."""
    width, height = image.size[::-1] if swapped else image.size
    factor = reduction_factor(width, height, sizes)
    if factor < 2 or image.mode not in ("RGB", "L") or "transparency" in image.info:
        return image
    return image.reduce(factor)


def reduction_factor(width: int, height: int, sizes: list[ThumbnailSize]) -> int:
    """The largest integer box-reduction of an upright `width`x`height` picture that still
    leaves every size the pixels it needs (1: none)."""
    return max(1, int(1 / max(needed_scale(width, height, size) for size in sizes)))


def srgb_pixels(image: Image.Image, *, keep_p3: bool = False) -> tuple[Image.Image, bool]:
    """8-bit RGB or RGBA pixels in sRGB, and whether there is an alpha channel.

    Pillow decodes but does not colour-manage: an embedded ICC profile (Display P3 from an
    iPhone, Adobe RGB, CMYK) is converted here, or the thumbnail's colours would be off.
    With `keep_p3` (a P3 original under THUMBNAIL_COLOR=keep-p3) the target is the compact P3
    profile instead, which the returned picture's `icc_profile` then names."""
    has_alpha = image.has_transparency_data
    target = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    converted_to = None
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if keep_p3:
                output = ImageCms.ImageCmsProfile(io.BytesIO(p3_profile_bytes()))
            else:
                output = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            mode = "RGBA" if image.mode == "RGBA" else "RGB"
            image = ImageCms.profileToProfile(image, source, output, outputMode=mode)
            converted_to = p3_profile_bytes() if keep_p3 else None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or unusual profile: show the pixels as they are
    image = image.convert(target)
    if converted_to is not None:
        image.info["icc_profile"] = converted_to
    return image, has_alpha
