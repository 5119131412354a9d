"""Still images: libvips with shrink-on-load, and Pillow (+ pillow-heif) where libvips has no
loader in pyvips-binary (HEIC/HEVC, BMP, ICO, animated AVIF) or gives up on damaged data.

libvips' `thumbnail` reads only as much of the file as the largest box needs (JPEG DCT
scaling, WebP/HEIF scaled decode, SVG rendered at the target scale), applies the EXIF
orientation and, with `export_profile="srgb"`, converts an embedded ICC profile (or CMYK) to
sRGB in the same pass. Without that option libvips keeps the source profile, and once
metadata is stripped the pixels would be shown as sRGB with the wrong colours.
"""

from __future__ import annotations

import io
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

import pyvips
from PIL import Image, ImageCms, ImageOps

from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget
from media_worker.engines.encode import (
    largest_box,
    render_from_image,
    render_sizes,
    scale_for,
)
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType
from media_worker.errors import (
    CorruptMediaError,
    LimitExceededError,
    MediaWorkerError,
    UnsupportedMediaError,
)
from media_worker.types import ThumbnailSize

# Formats the libvips build of pyvips-binary loads itself.
VIPS_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "avif", "svg"})
# Pillow's name for each format it may decode: the only one `Image.open` is allowed to try,
# so the bytes are never handed to a decoder the sniffer did not choose.
PILLOW_NAMES = {
    "heic": "HEIF", "bmp": "BMP", "ico": "ICO", "avif": "AVIF", "jxl": "JXL",
    "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "tiff": "TIFF", "webp": "WEBP",
}
# Where libvips fails, Pillow may still recover a picture: libjpeg gives up on some damaged
# scans (restart markers out of order) that Pillow decodes. Only for mature Pillow decoders.
_SECOND_CHANCE = frozenset({"jpeg", "png", "gif", "avif"})
_ORIENTATION_SWAPS = frozenset({5, 6, 7, 8})
_JPEG_SAMPLES_PER_PIXEL = {"4:2:0": 1.5, "4:2:2": 2.0, "4:4:4": 3.0}
# Decodes below this are not counted against the budget: they are not what makes a peak, and
# waiting for them would only add latency.
_MIN_BUDGETED_MEGABYTES = 16
_EXIF_ORIENTATION = 0x0112


def render_image(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None = None,
) -> RenderResult:
    """Thumbnails and metadata of a still image. A decode that cannot stream waits for its
    share of `budget` (see decode_budget.py)."""
    if media_type.format == "jxl" and not _jxl_plugin_loaded():
        raise UnsupportedMediaError(
            "JPEG XL is not supported: no JPEG XL decoder is installed (pillow-jxl-plugin)")
    if not _libvips_loads(media_type):
        return _render_with_pillow(path, media_type, sizes, output, max_pixels=max_pixels,
                                   budget=budget)
    try:
        return _render_with_vips(path, media_type, sizes, output, max_pixels=max_pixels,
                                   budget=budget)
    except pyvips.Error as exc:
        vips_failure = CorruptMediaError(decode_error(media_type, _vips_detail(exc), path))
        vips_said_why = bool((exc.detail or "").strip())
    if media_type.format not in _SECOND_CHANCE:
        raise vips_failure
    try:
        return _render_with_pillow(path, media_type, sizes, output, max_pixels=max_pixels,
                                   budget=budget)
    except CorruptMediaError as pillow_failure:
        raise (vips_failure if vips_said_why else pillow_failure) from None


def _libvips_loads(media_type: MediaType) -> bool:
    # An AVIF image *sequence* (brand avis) has no libvips loader in pyvips-binary.
    return media_type.format in VIPS_FORMATS and media_type.brand != "avis"


# --- libvips -------------------------------------------------------------------------------
def _render_with_vips(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None,
) -> RenderResult:
    source = _vips_source(path, media_type)
    header = _vips_header(source)
    if media_type.format != "svg":  # a vector is rasterised at thumbnail size, not its own
        check_pixels(header.width, header.height, max_pixels)
    orientation = _orientation(header)
    width, height = header.width, header.height
    if orientation in _ORIENTATION_SWAPS:
        width, height = height, width
    box = largest_box(width, height, sizes)
    with _admitted(budget, _vips_decode_megabytes(media_type, header)):
        largest = _decode_fitted(source, media_type, box, width, height,
                                 managed=_needs_colour_management(header))
        thumbnails = render_sizes(largest, sizes, output)
        del largest  # the decoder's buffers go with it, inside the admission
    metadata = image_metadata(media_type, width, height, orientation=orientation,
                              has_alpha=bool(header.hasalpha()), pages=_pages(header))
    return RenderResult(thumbnails, metadata)


def _decode_fitted(source: str | bytes, media_type: MediaType, box: ThumbnailSize,
                   width: int, height: int, *, managed: bool) -> pyvips.Image:
    """The picture decoded once, upright, in sRGB, fitted to `box` (`width`x`height` upright).

    Colour management only when `managed` (an embedded profile, or CMYK): an untagged picture
    is sRGB already, and asking libvips to export sRGB anyway cost a full ICC transform in
    libvips 8.18 (identical pixels, ~0.3 s of a 12 MP photo; ~6 ms even with an sRGB import
    profile). A JPEG is decoded at the smallest DCT scale that still covers the box, then
    resized: `thumbnail` keeps a 2x margin (a 12 MP photo for a 1280 px box decodes at full
    size, where 1/2 is enough), and the explicit shrink was 20-30% less CPU for the same
    SSIM."""
    options: dict[str, Any] = {"height": box.height, "size": "down"}
    if managed:
        options |= {"import_profile": "srgb", "export_profile": "srgb"}
    if isinstance(source, bytes):
        return pyvips.Image.thumbnail_buffer(source, box.width, **options)
    shrink = jpeg_shrink(width, height, box) if media_type.format == "jpeg" else 1
    if shrink == 1:
        return pyvips.Image.thumbnail(source, box.width, fail_on="none", **options)
    scaled = pyvips.Image.new_from_file(source, access="sequential", shrink=shrink,
                                        fail_on="none")
    return scaled.thumbnail_image(box.width, **options)


def _vips_decode_megabytes(media_type: MediaType, header: pyvips.Image) -> int:
    """What the decode holds in memory when it cannot stream; 0 when it streams."""
    pixels = header.width * header.height
    if media_type.format == "jpeg" and _header_int(header, "jpeg-multiscan"):
        # every coefficient (2 bytes) of every sample until the last scan
        if header.bands == 4:  # CMYK: four full-resolution components
            samples = 4.0
        elif header.bands >= 3:
            samples = _JPEG_SAMPLES_PER_PIXEL.get(
                _header_str(header, "jpeg-chroma-subsample"), 3.0)
        else:
            samples = 1.0
        return int(pixels * 2 * samples / MEGABYTE)
    if media_type.format == "avif":  # libheif decodes the whole picture, YUV planes and all
        return int(pixels * (header.bands + 1.5) / MEGABYTE)
    if media_type.format == "png" and _header_int(header, "interlaced"):
        depth = 2 if header.format == "ushort" else 1
        return pixels * header.bands * depth // MEGABYTE
    return 0


def _header_int(header: pyvips.Image, name: str) -> int:
    return int(header.get(name)) if header.get_typeof(name) else 0


def _header_str(header: pyvips.Image, name: str) -> str:
    return str(header.get(name)) if header.get_typeof(name) else ""


def _admitted(budget: DecodeBudget | None, megabytes: int) -> AbstractContextManager[None]:
    """The budget's admission for a decode of `megabytes`; small decodes are not counted."""
    if budget is None or megabytes < _MIN_BUDGETED_MEGABYTES:
        return nullcontext()
    return budget.admit(megabytes)


def _needs_colour_management(header: pyvips.Image) -> bool:
    """Whether the pixels need converting to sRGB: they carry a profile, or are CMYK."""
    return bool(header.get_typeof("icc-profile-data")) or header.interpretation == "cmyk"


def jpeg_shrink(width: int, height: int, box: ThumbnailSize) -> int:
    """The largest JPEG DCT scale-down (1, 2, 4 or 8) whose result still covers the thumbnail
    that `box` gives a `width`x`height` picture, so the resize after it only ever shrinks."""
    limit = 1 / scale_for(width, height, box)
    shrink = 1
    while shrink < 8 and shrink * 2 <= limit:
        shrink *= 2
    return shrink


def _vips_source(path: Path, media_type: MediaType) -> str | bytes:
    """SVG is loaded from memory: from a file, librsvg would also read the files it links to
    (`<image href="secret.png">` next to it), and a thumbnail could show them."""
    return path.read_bytes() if media_type.format == "svg" else str(path)


def _vips_header(source: str | bytes) -> pyvips.Image:
    """Opening with sequential access reads the header only; pixels are decoded later."""
    if isinstance(source, bytes):
        return pyvips.Image.new_from_buffer(source, "", access="sequential")
    return pyvips.Image.new_from_file(source, access="sequential")


def _orientation(image: pyvips.Image) -> int:
    if image.get_typeof("orientation"):
        value = int(image.get("orientation"))
        return value if 1 <= value <= 8 else 1
    return 1


def _pages(image: pyvips.Image) -> int:
    return int(image.get("n-pages")) if image.get_typeof("n-pages") else 1


def _vips_detail(exc: pyvips.Error) -> str:
    """libvips' own words: the first line of its error buffer, else pyvips' summary."""
    for line in (exc.detail or "").splitlines():
        if line.strip():
            return line.strip()
    return exc.message or "unknown libvips error"


def decode_error(media_type: MediaType, detail: str, path: Path) -> str:
    """`cannot decode FORMAT: <the decoder's words>`, one line, without the scratch file's path
    (it means nothing to the reader of the row)."""
    for spelling in (f"{path}: ", f" '{path}'", f' "{path}"', f"'{path}'", f'"{path}"'):
        detail = detail.replace(spelling, "")
    detail = detail.replace(str(path), "the file")
    detail = " ".join(detail.split())
    return f"cannot decode {media_type.format.upper()}: {detail[:200]}"


# --- Pillow --------------------------------------------------------------------------------
def _render_with_pillow(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None,
) -> RenderResult:
    _register_pillow_plugins()
    try:
        with Image.open(path, formats=[PILLOW_NAMES[media_type.format]]) as opened:
            check_pixels(opened.width, opened.height, max_pixels)
            pages = getattr(opened, "n_frames", 1)
            orientation = _pillow_orientation(opened)
            width, height = opened.size
            if orientation in _ORIENTATION_SWAPS:
                width, height = height, width
            _shrink_on_load(opened, sizes)
            with _admitted(budget, _pillow_decode_megabytes(opened)):
                reduced = _reduce_to_largest(opened, sizes,
                                             swapped=orientation in _ORIENTATION_SWAPS)
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
    metadata = image_metadata(media_type, width, height, orientation=orientation,
                              has_alpha=has_alpha, pages=pages)
    return RenderResult(thumbnails, metadata)


def _pillow_decode_megabytes(image: Image.Image) -> int:
    """Pillow decodes the whole picture (at its draft scale): 8-bit RGB(A), plus libheif's
    own YUV planes for HEIF."""
    per_pixel = 4 + (1.5 if image.format == "HEIF" else 0)
    return int(image.width * image.height * per_pixel / MEGABYTE)


def _pillow_orientation(image: Image.Image) -> int:
    value = image.getexif().get(_EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _shrink_on_load(image: Image.Image, sizes: list[ThumbnailSize]) -> None:
    """JPEG can decode at 1/2, 1/4 or 1/8 scale; ask for no less than the biggest box needs."""
    if image.format == "JPEG":
        edge = max(max(size.width, size.height) for size in sizes)
        image.draft("RGB", (edge, edge))


def _reduce_to_largest(image: Image.Image, sizes: list[ThumbnailSize], *,
                       swapped: bool) -> Image.Image:
    """Box-reduce by the largest integer factor that still leaves the biggest thumbnail's
    pixels, so colour management, transposition and the copy to libvips handle ~2 MP instead
    of a phone photo's 12 MP: a HEIC job measured 25-35% less CPU and half the extra memory.
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


@cache
def _register_pillow_plugins() -> None:
    """pillow-heif (HEIC/HEIF) and, when installed, the JPEG XL plugin register with Pillow.

    libheif decodes the tiles of a HEIC in 4 threads by default; a worker already runs one
    job per core, so they only add overhead: one thread measured 4-8% less CPU per render
    (279 → 257 ms for an 8.5 MP HEIC, 472 → 452 ms for 12 MP)."""
    from pillow_heif import options, register_heif_opener

    options.DECODE_THREADS = 1
    register_heif_opener()
    _jxl_plugin_loaded()


@cache
def _jxl_plugin_loaded() -> bool:
    """Whether `pillow-jxl-plugin` is installed (importing it registers the JXL format)."""
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return False
    return True


# --- shared --------------------------------------------------------------------------------
def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Refuse, from the header alone, a picture bigger than MAX_PIXELS (decompression bombs)."""
    if width * height > max_pixels:
        raise LimitExceededError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (MAX_PIXELS)")


def image_metadata(media_type: MediaType, width: int, height: int, *, orientation: int,
                   has_alpha: bool, pages: int) -> dict[str, Any]:
    """What the row's `metadata` says about a still image; width/height are upright."""
    return {"kind": "image", "format": media_type.format, "mimeType": media_type.mime_type,
            "width": width, "height": height, "orientation": orientation,
            "hasAlpha": has_alpha, "pages": pages}
