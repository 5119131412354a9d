"""The Pillow path: formats libvips has no loader for (HEIC, BMP, ICO, animated AVIF, JPEG XL)
and damaged files libvips gives up on. Pillow decodes the whole picture (at its JPEG draft
scale at best), so the decode is reduced to about the largest thumbnail before anything else
touches it, then handed to libvips for resizing and encoding.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyvips
from PIL import Image, ImageCms, ImageOps

from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.decode_errors import decode_error
from media_worker.engines.encode import render_from_image, scale_for
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import (
    ORIENTATION_SWAPS,
    check_pixels,
    header_of_pillow,
    image_metadata,
    open_with_pillow,
)
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, LimitExceededError, MediaWorkerError
from media_worker.types import ThumbnailSize

_RGBA_BYTES = 4
_HEIF_YUV_BYTES = 1.5  # libheif's own 8-bit 4:2:0 planes, beside Pillow's copy


def render_with_pillow(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None,
) -> RenderResult:
    try:
        with open_with_pillow(path, media_type) as opened:
            header = header_of_pillow(opened)
            check_pixels(opened.width, opened.height, max_pixels)
            _shrink_on_load(opened, sizes)
            with admitted(budget, _decode_megabytes(opened)):
                reduced = _reduce_to_largest(opened, sizes,
                                             swapped=header.orientation in ORIENTATION_SWAPS)
                pixels, has_alpha = srgb_pixels(ImageOps.exif_transpose(reduced))
                del reduced
    except MediaWorkerError:
        raise
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"image refused as a decompression bomb: {exc}") from None
    except Exception as exc:  # fuzzed files make Pillow raise anything (TypeError, …)
        raise CorruptMediaError(decode_error(media_type, str(exc) or type(exc).__name__,
                                             path)) from None
    image = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height,
                                         len(pixels.getbands()), "uchar")
    thumbnails = render_from_image(image.copy(interpretation="srgb"), sizes, output)
    metadata = image_metadata(media_type, header) | {"hasAlpha": has_alpha}
    return RenderResult(thumbnails, metadata)


def _decode_megabytes(image: Image.Image) -> int:
    """Pillow decodes the whole picture (at its draft scale): 8-bit RGB(A), plus libheif's
    own YUV planes for HEIF."""
    per_pixel = _RGBA_BYTES + (_HEIF_YUV_BYTES if image.format == "HEIF" else 0)
    return int(image.width * image.height * per_pixel / MEGABYTE)


def _shrink_on_load(image: Image.Image, sizes: list[ThumbnailSize]) -> None:
    """JPEG can decode at 1/2, 1/4 or 1/8 scale; ask for no less than the biggest box needs."""
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
    factor = int(1 / max(scale_for(width, height, size) for size in sizes))
    if factor < 2 or image.mode not in ("RGB", "L") or "transparency" in image.info:
        return image
    return image.reduce(factor)


def srgb_pixels(image: Image.Image) -> tuple[Image.Image, bool]:
    """8-bit RGB or RGBA pixels in sRGB, and whether there is an alpha channel.

    Pillow decodes but does not colour-manage: an embedded ICC profile (Display P3 from an
    iPhone, Adobe RGB, CMYK) is converted here, or the thumbnail's colours would be off."""
    has_alpha = image.has_transparency_data
    target = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            mode = "RGBA" if image.mode == "RGBA" else "RGB"
            image = ImageCms.profileToProfile(image, source, srgb, outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or unusual profile: show the pixels as they are
    return image.convert(target), has_alpha
