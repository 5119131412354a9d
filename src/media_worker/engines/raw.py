"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, PEF) through LibRaw (rawpy).

Two ways to a picture, chosen per job. Most cameras embed a JPEG of the shot, full or screen
size: when it covers the largest box it is one shrink-on-load JPEG decode away (libvips), far
cheaper than the sensor data. Otherwise the sensor data is demosaiced at half size (LibRaw's
half-size mode: one RGB pixel per 2x2 block of the colour filter array, no interpolation), at
full size only when half does not cover the box; in sRGB, 8-bit, with the camera's white
balance. `metadata.rawSource` says which.

Upright from LibRaw's `flip`, which it reads from the RAW's own orientation tag: a preview is
stored as the sensor saw it, and whatever orientation its own EXIF carries (most carry none) is
not applied (Immich #12720). LibRaw sometimes "decodes" a file whose pixel data is missing to
an all-black picture without an error; that is a failure here, never a black thumbnail.

`takenAt`, `camera`, `exposure` (and, under METADATA_GPS=keep, `gps`) come from the RAW's EXIF
as a JPEG's do (engines/raw_exif.py); EXIF that cannot be read only leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.encode import Framing, largest_box, render_sizes, scale_for
from media_worker.engines.images.vips import jpeg_shrink
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import ORIENTATION_SWAPS, ImageHeader, check_pixels, image_metadata
from media_worker.engines.raw_exif import raw_capture
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, UnsupportedMediaError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

# LibRaw's `flip` (dcraw's bits: 4 transpose, 2 flip rows, 1 flip columns) as EXIF orientation.
EXIF_FROM_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
# A preview whose aspect differs more than this from the sensor picture's is not the same
# framing (letterboxed, or a 16:9 crop of a 3:2 sensor): the sensor data is used instead.
PREVIEW_ASPECT_TOLERANCE = 0.01
# The brightest 8-bit sample of a picture taken to be missing: LibRaw brightens even a shot
# with the lens cap on until its noise shows, so all but black is data.
BLACK_MAXIMUM = 3
# Bytes per pixel of a demosaic: LibRaw's 16-bit sensor copy per sensor pixel; its 4x16-bit
# working image, the 8-bit RGB result and its copy for libvips per output pixel.
_SENSOR_BYTES, _OUTPUT_BYTES = 2, 8 + 3 + 3
_STACKED_SENSOR_BYTES = 8  # a linear DNG (RGB already, e.g. ProRAW): 4x16 bits per pixel


@dataclass(frozen=True)
class RawPicture:
    """What LibRaw's header says: the picture's size as stored, its upright orientation."""

    width: int
    height: int
    orientation: int

    @property
    def upright(self) -> tuple[int, int]:
        swapped = self.orientation in ORIENTATION_SWAPS
        return (self.height, self.width) if swapped else (self.width, self.height)


def render_raw(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None = None, focus: Focus | None = None,
) -> RenderResult:
    """Thumbnails and metadata of a camera RAW, from its preview or its sensor data."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            picture = RawPicture(raw.sizes.width, raw.sizes.height,
                                 EXIF_FROM_FLIP.get(raw.sizes.flip, 1))
            check_pixels(picture.width, picture.height, max_pixels)
            width, height = picture.upright
            target = fitted(width, height, largest_box(width, height, sizes))
            largest = _from_preview(raw, picture, target, max_pixels)
            source = "embedded-preview"
            if largest is None:
                largest = _demosaiced(raw, picture, target, budget, media_type)
                source = "demosaic"
    except rawpy.LibRawError as exc:
        raise _failure(media_type, exc) from None
    thumbnails = render_sizes(largest, sizes, output, framing=Framing(width, height, focus))
    header = ImageHeader(picture.width, picture.height, picture.orientation,
                         capture=raw_capture(path, media_type.format))
    metadata = image_metadata(media_type, header, gps=output.gps)
    return RenderResult(thumbnails, metadata | {"rawSource": source})


def fitted(width: int, height: int, box: ThumbnailSize) -> tuple[int, int]:
    """The size a `width`x`height` picture has fitted in `box` (never enlarged)."""
    scale = scale_for(width, height, box)
    return max(1, round(width * scale)), max(1, round(height * scale))


def covers(preview: tuple[int, int], picture: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether an upright preview can stand for the upright picture at the `target` size:
    at least that big (a pixel of rounding aside) and of the same framing."""
    (pw, ph), (width, height) = preview, picture
    if pw < target[0] - 1 or ph < target[1] - 1:
        return False
    return abs((pw / ph) / (width / height) - 1) <= PREVIEW_ASPECT_TOLERANCE


def half_size_covers(picture: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether LibRaw's half-size decode of a `picture` (upright) still covers `target`."""
    return picture[0] // 2 >= target[0] and picture[1] // 2 >= target[1]


def upright_preview(image: pyvips.Image, orientation: int) -> pyvips.Image:
    """The preview turned by the RAW's orientation, whatever its own EXIF says."""
    image = image.copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.autorot()


def _from_preview(raw: Any, picture: RawPicture, target: tuple[int, int],
                  max_pixels: int) -> pyvips.Image | None:
    """The embedded preview at exactly `target`, upright; None when there is none, or it does
    not cover the target."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError:
        return None  # a damaged preview: the sensor data may still be whole
    try:
        image = _preview_image(thumb, rawpy.ThumbFormat.JPEG)
        swapped = picture.orientation in ORIENTATION_SWAPS
        upright = (image.height, image.width) if swapped else (image.width, image.height)
        if image.width * image.height > max_pixels or not covers(upright, picture.upright,
                                                                 target):
            return None
        if thumb.format == rawpy.ThumbFormat.JPEG:
            image = _shrunk_preview(thumb.data, image, target[::-1] if swapped else target)
        image = upright_preview(image, picture.orientation)
        if (image.width, image.height) != target:
            image = image.thumbnail_image(target[0], height=target[1], size="force")
        return image.copy_memory()
    except pyvips.Error:
        return None  # a preview libvips cannot read: the sensor data may still be whole


def _shrunk_preview(jpeg: bytes, header: pyvips.Image, box: tuple[int, int]) -> pyvips.Image:
    """The JPEG preview decoded at the largest DCT scale-down whose result still covers `box`
    (in its stored orientation), then fitted to it, as the JPEG path decodes a JPEG
    (images/vips.py): `thumbnail_buffer` keeps a 2x margin and so decoded a 12 MP preview at
    full size for a 1280 px box. Its own EXIF orientation is not applied (`no_rotate`)."""
    shrink = jpeg_shrink(header.width, header.height,
                         ThumbnailSize(name="preview", width=box[0], height=box[1]))
    scaled = pyvips.Image.new_from_buffer(jpeg, "", access="sequential", shrink=shrink)
    fitted = scaled.thumbnail_image(box[0], height=box[1], size="down", no_rotate=True)
    return fitted.copy_memory()  # turning a sequential decode would read it out of order


def _preview_image(thumb: Any, jpeg: Any) -> pyvips.Image:
    """The preview's header (a JPEG is not decoded here) or its pixels (a bitmap)."""
    if thumb.format == jpeg:
        return pyvips.Image.new_from_buffer(thumb.data, "", access="sequential")
    pixels = thumb.data  # height x width x 3, 8-bit RGB
    return pyvips.Image.new_from_memory(pixels.tobytes(), pixels.shape[1], pixels.shape[0],
                                        pixels.shape[2], "uchar").copy(interpretation="srgb")


def _demosaiced(raw: Any, picture: RawPicture, target: tuple[int, int],
                budget: DecodeBudget | None, media_type: MediaType) -> pyvips.Image:
    """The sensor data demosaiced (half size when that covers `target`), upright, in sRGB."""
    import rawpy

    half = half_size_covers(picture.upright, target)
    with admitted(budget, _demosaic_megabytes(raw, half=half)):
        pixels = raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8,
                                 output_color=rawpy.ColorSpace.sRGB)
        if int(pixels.max()) <= BLACK_MAXIMUM:
            raise CorruptMediaError(
                f"cannot decode {media_type.format.upper()}: the pixel data is missing "
                "(LibRaw decodes it to an all-black picture: a cut or damaged file)")
        rows, columns = pixels.shape[:2]
        image = pyvips.Image.new_from_memory(pixels.tobytes(), columns, rows, 3, "uchar")
        del pixels
        image = image.copy(interpretation="srgb")
        return image.thumbnail_image(target[0], height=target[1], size="down").copy_memory()


def _demosaic_megabytes(raw: Any, *, half: bool) -> int:
    import rawpy

    sensor = raw.sizes.raw_width * raw.sizes.raw_height
    stacked = raw.raw_type == rawpy.RawType.Stack
    output = raw.sizes.width * raw.sizes.height // (4 if half and not stacked else 1)
    per_sensor = _STACKED_SENSOR_BYTES if stacked else _SENSOR_BYTES
    return (sensor * per_sensor + output * _OUTPUT_BYTES) // MEGABYTE


def _failure(media_type: MediaType, exc: Exception) -> Exception:
    """LibRaw's refusal in the row's words: GPR and unknown files as unsupported, missing
    or damaged sensor data as corrupt."""
    import rawpy

    name = media_type.format.upper()
    words = _libraw_words(exc)
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        if media_type.format == "gpr":
            return UnsupportedMediaError(
                "unsupported RAW format: GoPro GPR (VC-5 compressed DNG) needs LibRaw built "
                "with the GPR SDK")
        return UnsupportedMediaError(
            f"unsupported {name}: LibRaw cannot read it (a camera it does not know, or a "
            f"damaged file: {words})")
    return CorruptMediaError(f"cannot decode {name}: the sensor data is missing or damaged "
                             f"(LibRaw: {words})")


def _libraw_words(exc: Exception) -> str:
    """rawpy's message is LibRaw's own, as bytes: b'Input/output error'."""
    words = exc.args[0] if exc.args else type(exc).__name__
    return words.decode("latin-1") if isinstance(words, bytes) else str(words)
