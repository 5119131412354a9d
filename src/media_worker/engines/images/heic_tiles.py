"""Grid HEICs (phones write 512x512 HEVC tiles) decoded one row of tiles at a time.

A whole decode holds the full picture twice over (libheif's YUV planes, then RGB): a 200 MP
Samsung photo needs more memory than a decoder process should ever take, and is past Pillow's
decompression-bomb limit. Here each row of tiles is decoded (libheif's tile API, libheif.py),
box-reduced at once by the integer factor the largest thumbnail allows, and pasted into a
small canvas; rows left over by the factor wait for the next row, so the result is exactly the
whole picture's box reduction. A decode then holds a row of tiles and the reduced picture, and
MAX_PIXELS is checked against that; MAX_HEADER_PIXELS still bounds the header, since the work
grows with every pixel. The item's transformations and the EXIF orientation are applied to the
reduced picture, and colours are handled by the same `srgb_pixels` as the whole decode.

Left to the whole decode (pillow.py): a picture of one tile, one with alpha (its alpha is a
separate grid), PQ/HLG pictures (tone-mapped from 16-bit code values), and any file when the
tile API is missing (an older libheif).
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

from media_worker.engines.color.detect_still import detect_still
from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.decode_errors import decode_error
from media_worker.engines.encode import Framing
from media_worker.engines.images.libheif import (
    Primary,
    Tiling,
    Transform,
    library,
    open_primary,
)
from media_worker.engines.images.pillow import reduction_factor, render_srgb, srgb_pixels
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import (
    check_header_pixels,
    check_held_pixels,
    header_of_pillow,
    image_metadata,
    register_pillow_plugins,
)
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, MediaWorkerError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

_PILLOW_RGB_BYTES = 4  # Pillow keeps RGB in 32-bit pixels
# Per pixel of the strip: itself. Per pixel of a tile: libheif's YUV planes and RGB image,
# the bytes copied out of it and Pillow's image. Per pixel of the reduced picture: the canvas,
# its upright copy and the sRGB conversion.
_ROW_BYTES = _PILLOW_RGB_BYTES
_TILE_BYTES = 1.5 + 3 + 3 + _PILLOW_RGB_BYTES
_CANVAS_BYTES = 3 * _PILLOW_RGB_BYTES
_ROTATIONS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
              270: Image.Transpose.ROTATE_270}  # counter-clockwise, as `irot` counts
_MIRRORS = {0: Image.Transpose.FLIP_TOP_BOTTOM, 1: Image.Transpose.FLIP_LEFT_RIGHT}
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                   6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                   8: Image.Transpose.ROTATE_90}


def render_tiled_heic(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec, *,
    max_pixels: int, max_header_pixels: int, budget: DecodeBudget | None,
    focus: Focus | None = None,
) -> RenderResult | None:
    """Thumbnails of a grid HEIC, or None where the whole decode must do (module doc)."""
    lib = library()
    if lib is None:
        return None
    try:
        with open_primary(lib, path) as primary:
            tiling = primary.tiling()
            if tiling.columns * tiling.rows < 2 or primary.has_alpha:
                return None
            return _render(path, media_type, primary, sizes, output, tiling=tiling,
                           max_pixels=max_pixels, max_header_pixels=max_header_pixels,
                           budget=budget, focus=focus)
    except MediaWorkerError:
        raise
    except Exception as exc:  # damaged files make libheif and Pillow raise anything
        raise CorruptMediaError(decode_error(media_type, str(exc) or type(exc).__name__,
                                             path)) from None


def _render(path: Path, media_type: MediaType, primary: Primary,
            sizes: list[ThumbnailSize], output: OutputSpec, *, tiling: Tiling, max_pixels: int,
            max_header_pixels: int, budget: DecodeBudget | None,
            focus: Focus | None) -> RenderResult | None:
    """The header, the limits on it, then the decode inside its share of the budget."""
    register_pillow_plugins()
    import pillow_heif

    # Opened by pillow-heif's plugin class, not Image.open: Pillow's bomb check is for
    # decodes that hold the picture, and the limits below replace it here.
    with pillow_heif.HeifImageFile(path) as opened:
        header = header_of_pillow(opened)
        icc = opened.info.get("icc_profile")
    signal = detect_still(path, media_type, icc=icc)
    if signal.is_hdr:
        return None
    width, height = header.upright
    factor = reduction_factor(width, height, sizes)
    held = held_pixels(tiling, factor)
    check_header_pixels(width, height, max_header_pixels)
    check_held_pixels(width, height, held, max_pixels, "tile by tile")
    metadata = (image_metadata(media_type, header, gps=output.gps)
                | {"hdr": signal.to_metadata()})
    keep_p3 = output.color == "keep-p3" and signal.primaries == "p3"
    with admitted(budget, tiled_megabytes(tiling, factor)):
        transforms = primary.transforms()
        phase = block_phase(tiling, transforms, factor, header.orientation)
        coded = reduced_by_tiles(primary, tiling, factor, phase)
        upright = transformed(coded, transforms, factor, header.orientation)
        del coded
        if icc:
            upright.info["icc_profile"] = icc
        pixels, has_alpha = srgb_pixels(upright, keep_p3=keep_p3)
        del upright
    return render_srgb(pixels, sizes, output, Framing(width, height, focus),
                       metadata | {"hasAlpha": has_alpha}, keep_p3=keep_p3)


def reduced_by_tiles(primary: Primary, tiling: Tiling, factor: int,
                     phase: tuple[int, int] = (0, 0)) -> Image.Image:
    """The coded picture box-reduced by `factor`, decoded one row of tiles at a time into one
    strip, reused: the lines a row leaves over (fewer than `factor`) move to the strip's top,
    and the next row goes under them. The blocks start `phase` pixels in (a first, partial
    block before them), so that they fall where the upright picture's would (`block_phase`):
    the result is then the upright picture's `Image.reduce`, turned back."""
    width, height = tiling.width, tiling.height
    phase_x, phase_y = phase
    canvas = Image.new("RGB", (_blocks(width, factor, phase_x), _blocks(height, factor, phase_y)))
    strip = Image.new("RGB", (width, tiling.tile_height + factor - 1))
    top = carried = reduced_rows = 0  # top: the coded line at the strip's first line
    for row in range(tiling.rows):
        first = row * tiling.tile_height
        if first >= height:
            break
        for column in range(tiling.columns):
            left = column * tiling.tile_width
            if left < width:  # a tile's overhang past the picture is clipped or left unread
                strip.paste(primary.decode_tile(column, row), (left, carried))
        end = top + carried + min(tiling.tile_height, height - first)
        ready = end if end >= height or row == tiling.rows - 1 else _boundary(end, factor,
                                                                               phase_y)
        for start, stop in _segments(top, ready, phase_y):
            part = _reduced_lines(strip, start - top, stop - top, factor, phase_x)
            canvas.paste(part, (0, reduced_rows))
            reduced_rows += part.height
        carried = end - ready
        if carried:
            strip.paste(strip.crop((0, ready - top, width, end - top)), (0, 0))
        top = ready
    return canvas


def _blocks(length: int, factor: int, phase: int) -> int:
    return (1 if phase else 0) + math.ceil((length - phase) / factor)


def _boundary(line: int, factor: int, phase: int) -> int:
    """The last block boundary at or before `line`."""
    return 0 if line < phase else phase + (line - phase) // factor * factor


def _segments(start: int, stop: int, phase: int) -> list[tuple[int, int]]:
    """[start, stop) split where the partial first block ends: each part reduces on its own."""
    if start < phase < stop:
        return [(start, phase), (phase, stop)]
    return [(start, stop)] if stop > start else []


def _reduced_lines(strip: Image.Image, top: int, bottom: int, factor: int,
                   phase: int) -> Image.Image:
    """Lines [top, bottom) of the strip, reduced, the first `phase` columns a block alone."""
    if not phase:
        return strip.reduce(factor, box=(0, top, strip.width, bottom))
    first = strip.reduce(factor, box=(0, top, phase, bottom))
    rest = strip.reduce(factor, box=(phase, top, strip.width, bottom))
    lines = Image.new("RGB", (first.width + rest.width, rest.height))
    lines.paste(first, (0, 0))
    lines.paste(rest, (first.width, 0))
    return lines


def block_phase(tiling: Tiling, transforms: list[Transform], factor: int,
                orientation: int = 1) -> tuple[int, int]:
    """Where the reduction's blocks start in the coded picture, so that they line up with the
    upright picture's: on an axis the turn reverses, the blocks end at the coded picture's
    end rather than start at its beginning. Found by turning a 2x2 marker; with a crop, the
    blocks start at 0 (a crop's offset would shift them again: close enough)."""
    if any(step.kind == "crop" for step in transforms):
        return 0, 0
    marker = Image.new("L", (2, 2))
    marker.putpixel((1, 0), 1)
    marker.putpixel((0, 1), 2)
    marker.putpixel((1, 1), 3)
    corner = transformed(marker, transforms, 1, orientation).getpixel((0, 0))
    reversed_x, reversed_y = corner in (1, 3), corner in (2, 3)
    return (tiling.width % factor if reversed_x else 0,
            tiling.height % factor if reversed_y else 0)


def transformed(image: Image.Image, transforms: list[Transform], factor: int,
                orientation: int = 1) -> Image.Image:
    """`image`, reduced by `factor`, turned as the item's transformations say (crops were
    measured at full size), then by the EXIF orientation the header reports."""
    for step in transforms:
        if step.kind == "rotate" and step.value in _ROTATIONS:
            image = image.transpose(_ROTATIONS[step.value])
        elif step.kind == "mirror" and step.value in _MIRRORS:
            image = image.transpose(_MIRRORS[step.value])
        elif step.kind == "crop":
            image = _cropped(image, step.borders, factor)
    if orientation in _EXIF_TRANSPOSE:
        image = image.transpose(_EXIF_TRANSPOSE[orientation])
    return image


def _cropped(image: Image.Image, borders: tuple[int, int, int, int],
             factor: int) -> Image.Image:
    left, top, right, bottom = (round(border / factor) for border in borders)
    box = (left, top, max(left + 1, image.width - right), max(top + 1, image.height - bottom))
    return image.crop(box)


def held_pixels(tiling: Tiling, factor: int) -> int:
    """What the decode holds at once: a row of tiles with the lines carried over, one tile
    being decoded, and the reduced picture."""
    row = tiling.width * (tiling.tile_height + factor - 1)
    canvas = math.ceil(tiling.width / factor) * math.ceil(tiling.height / factor)
    return row + tiling.tile_width * tiling.tile_height + canvas


def tiled_megabytes(tiling: Tiling, factor: int) -> int:
    """The decode's reservation against DECODE_MEMORY_MB."""
    row = tiling.width * (tiling.tile_height + factor - 1)
    canvas = math.ceil(tiling.width / factor) * math.ceil(tiling.height / factor)
    tile = tiling.tile_width * tiling.tile_height
    return int((row * _ROW_BYTES + tile * _TILE_BYTES + canvas * _CANVAS_BYTES) / MEGABYTE)
