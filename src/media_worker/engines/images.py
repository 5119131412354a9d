"""Still images: libvips with shrink-on-load, and Pillow/pillow-heif where libvips has no
loader in pyvips-binary (HEIC/HEVC, BMP, ICO, animated AVIF).

libvips' `thumbnail` reads only as much of the file as the largest box needs (JPEG DCT
scaling, WebP/HEIF scaled decode), applies the EXIF orientation and converts an embedded ICC
profile to sRGB, all in one pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyvips
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from media_worker.engines.encode import largest_first, render_sizes
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
from media_worker.types import ThumbnailSize

# Formats the libvips build of pyvips-binary loads itself.
VIPS_FORMATS = {"jpeg", "png", "gif", "webp", "tiff", "avif", "svg"}
# Formats decoded by Pillow (pillow-heif registers HEIC/HEIF with it).
PILLOW_FORMATS = {"heic", "bmp", "ico"}
_ORIENTATION_SWAPS = {5, 6, 7, 8}


def render_image(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int,
) -> RenderResult:
    """Thumbnails and metadata of a still image."""
    if media_type.format == "jxl":
        raise UnsupportedMediaError(
            "unsupported media type: JPEG XL (no JPEG XL decoder is installed)")
    if media_type.format in VIPS_FORMATS:
        try:
            return _render_with_vips(path, media_type, sizes, output, max_pixels)
        except pyvips.Error as exc:
            if media_type.format != "avif":
                raise CorruptMediaError(_vips_message(exc, media_type, path)) from None
            # Animated AVIF (avis) has no libvips loader here: Pillow decodes it.
    if media_type.format in PILLOW_FORMATS | {"avif"}:
        return _render_with_pillow(path, media_type, sizes, output, max_pixels)
    raise UnsupportedMediaError(f"unsupported media type: {media_type.format}")


# --- libvips -------------------------------------------------------------------------------
def _render_with_vips(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    max_pixels: int,
) -> RenderResult:
    header = pyvips.Image.new_from_file(str(path), access="sequential")
    _check_pixels(header.width, header.height, max_pixels)
    orientation = _orientation(header)
    box = largest_first(sizes)[0]
    largest = pyvips.Image.thumbnail(str(path), box.width, height=box.height, size="down",
                                     fail_on="none")
    thumbnails = render_sizes(largest, sizes, output)
    width, height = header.width, header.height
    if orientation in _ORIENTATION_SWAPS:
        width, height = height, width
    metadata = _metadata(media_type, width, height, orientation=orientation,
                         has_alpha=bool(header.hasalpha()), pages=_pages(header))
    return RenderResult(thumbnails, metadata)


def _orientation(image: pyvips.Image) -> int:
    if "orientation" in image.get_fields():
        value = int(image.get("orientation"))
        return value if 1 <= value <= 8 else 1
    return 1


def _pages(image: pyvips.Image) -> int:
    return int(image.get("n-pages")) if "n-pages" in image.get_fields() else 1


def _vips_message(exc: pyvips.Error, media_type: MediaType, path: Path) -> str:
    return decode_error(media_type, str(exc.detail or exc.message), path)


def decode_error(media_type: MediaType, detail: str, path: Path) -> str:
    """`cannot decode FORMAT: <first 200 characters of the decoder's words>`, without the
    scratch file's path (it means nothing to the reader of the row)."""
    detail = " ".join(detail.replace(f"'{path}'", "the file").replace(str(path), "the file")
                      .split())
    return f"cannot decode {media_type.format.upper()}: {detail[:200]}"


# --- Pillow --------------------------------------------------------------------------------
def _render_with_pillow(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    max_pixels: int,
) -> RenderResult:
    _register_heif()
    try:
        with Image.open(path) as opened:
            _check_pixels(opened.width, opened.height, max_pixels)
            if media_type.format == "ico":
                opened.size = max(opened.info.get("sizes", {opened.size}))
            pages = getattr(opened, "n_frames", 1)
            orientation = int(opened.getexif().get(0x0112, 1) or 1)
            upright = ImageOps.exif_transpose(opened)
            has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            pixels = _to_srgb(upright.convert("RGBA" if has_alpha else "RGB"), upright)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        raise CorruptMediaError(decode_error(media_type, str(exc), path)) from None
    image = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height,
                                         len(pixels.getbands()), "uchar")
    image = image.copy(interpretation="srgb")
    box = largest_first(sizes)[0]
    largest = image.thumbnail_image(box.width, height=box.height, size="down")
    metadata = _metadata(media_type, pixels.width, pixels.height, orientation=orientation,
                         has_alpha=has_alpha, pages=pages)
    return RenderResult(render_sizes(largest, sizes, output), metadata)


def _to_srgb(converted: Image.Image, original: Image.Image) -> Image.Image:
    """Convert pixels from an embedded ICC profile to sRGB (Pillow does not on its own)."""
    icc = original.info.get("icc_profile")
    if not icc:
        return converted
    try:
        source = ImageCms.ImageCmsProfile(ImageCms.core.profile_frombytes(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(converted, source, srgb, outputMode=converted.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return converted  # a broken profile: keep the pixels as they are


def _register_heif() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()


# --- shared --------------------------------------------------------------------------------
def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise LimitExceededError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (MAX_PIXELS)")


def _metadata(media_type: MediaType, width: int, height: int, *, orientation: int,
              has_alpha: bool, pages: int) -> dict[str, Any]:
    return {"kind": "image", "format": media_type.format, "mimeType": media_type.mime_type,
            "width": width, "height": height, "orientation": orientation,
            "hasAlpha": has_alpha, "pages": pages}
