"""libheif's tile API, through ctypes, on the libheif that pillow-heif loaded.

pillow-heif decodes a grid image (a HEIC made of 512x512 HEVC tiles, as phones write them)
into one buffer, with libheif's YUV planes beside it: far more, for a 200 MP photo, than a
decoder process should hold (docs/performance.md). libheif itself (1.19 and later) decodes
one tile at a time (`heif_image_handle_decode_image_tile`), which pillow-heif does not
expose. This binds the few calls a tiled decode needs, on the same
library pillow-heif uses (its wheels ship it in `pillow_heif.libs`), so the HEVC decoder, the
colour conversion and the security limits are those of the whole-picture path.

Tiles are decoded as coded (transformations ignored) and the item's transformations (`clap`,
`irot`, `imir`, in file order) are read on their own, for the caller to apply to its reduced
picture. libheif can also hand out transformed tiles, but the offsets it reports for placing
them are wrong for a grid whose size is not a whole number of tiles (libheif 1.23 gives the
last tile's remainder instead of the padding), and turning a small picture is cheap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

_P = ctypes.c_void_p
_RGB, _INTERLEAVED_RGB, _INTERLEAVED_CHANNEL = 1, 10, 10  # heif_colorspace, heif_chroma, channel
_IGNORE_TRANSFORMATIONS = 1  # byte offset in heif_decoding_options (version 1 fields)
_MAX_TRANSFORMS = 16


def _fourcc(code: bytes) -> int:
    return int.from_bytes(code, "big")


_CLAP, _IROT, _IMIR = _fourcc(b"clap"), _fourcc(b"irot"), _fourcc(b"imir")


class LibheifError(Exception):
    """libheif refused the file or a tile; the message is libheif's."""


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _Tiling(ctypes.Structure):
    _fields_ = [("version", ctypes.c_int), ("num_columns", ctypes.c_uint32),
                ("num_rows", ctypes.c_uint32), ("tile_width", ctypes.c_uint32),
                ("tile_height", ctypes.c_uint32), ("image_width", ctypes.c_uint32),
                ("image_height", ctypes.c_uint32), ("top_offset", ctypes.c_uint32),
                ("left_offset", ctypes.c_uint32), ("extra_dimensions", ctypes.c_uint8),
                ("extra_dimension_size", ctypes.c_uint32 * 8)]


@dataclass(frozen=True)
class Tiling:
    """The coded grid: `columns` x `rows` tiles of `tile_width` x `tile_height`, covering a
    `width` x `height` picture (the last column and row may overhang it)."""

    columns: int
    rows: int
    tile_width: int
    tile_height: int
    width: int
    height: int


@dataclass(frozen=True)
class Transform:
    """One transformation of the item, in the order the file lists it: `rotate` by `value`
    degrees counter-clockwise, `mirror` (`value` 0: top to bottom, 1: left to right), or
    `crop` `borders` (left, top, right, bottom) off the picture as it is at that step."""

    kind: str
    value: int = 0
    borders: tuple[int, int, int, int] = (0, 0, 0, 0)


_SIGNATURES: dict[str, tuple[list[object], object]] = {
    "heif_init": ([_P], _Error),
    "heif_context_alloc": ([], _P),
    "heif_context_free": ([_P], None),
    "heif_context_read_from_file": ([_P, ctypes.c_char_p, _P], _Error),
    "heif_context_get_primary_image_handle": ([_P, ctypes.POINTER(_P)], _Error),
    "heif_image_handle_release": ([_P], None),
    "heif_image_handle_has_alpha_channel": ([_P], ctypes.c_int),
    "heif_image_handle_get_item_id": ([_P], ctypes.c_uint32),
    "heif_image_handle_get_image_tiling": ([_P, ctypes.c_int, ctypes.POINTER(_Tiling)],
                                           _Error),
    "heif_item_get_transformation_properties": (
        [_P, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32), ctypes.c_int], ctypes.c_int),
    "heif_item_get_property_type": ([_P, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
    "heif_item_get_property_transform_rotation_ccw": (
        [_P, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
    "heif_item_get_property_transform_mirror": (
        [_P, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
    "heif_item_get_property_transform_crop_borders": (
        [_P, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int, ctypes.c_int,
         *[ctypes.POINTER(ctypes.c_int)] * 4], None),
    "heif_decoding_options_alloc": ([], _P),
    "heif_decoding_options_free": ([_P], None),
    "heif_image_handle_decode_image_tile": (
        [_P, ctypes.POINTER(_P), ctypes.c_int, ctypes.c_int, _P, ctypes.c_uint32,
         ctypes.c_uint32], _Error),
    "heif_image_get_plane_readonly2": (
        [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)], _P),
    "heif_image_get_primary_width": ([_P], ctypes.c_int),
    "heif_image_get_primary_height": ([_P], ctypes.c_int),
    "heif_image_release": ([_P], None),
}


@cache
def library() -> ctypes.CDLL | None:
    """libheif with the tile API, or None (then grids are decoded whole)."""
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
            for name, (arguments, result) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.argtypes, function.restype = arguments, result
        except (OSError, AttributeError):
            continue
        lib.heif_init(None)
        return lib
    return None


def _candidates() -> list[str]:
    """pillow-heif's own copy first (the one its module has loaded), then the system's."""
    import pillow_heif

    bundled = Path(pillow_heif.__file__).parent.parent / "pillow_heif.libs"
    found = sorted(str(path) for path in bundled.glob("libheif*.so*"))
    system = ctypes.util.find_library("heif")
    return [*found, *([system] if system else [])]


class Primary:
    """The primary image of an opened HEIF file."""

    def __init__(self, lib: ctypes.CDLL, context: int, handle: int) -> None:
        self._lib, self._context, self._handle = lib, context, handle
        self._item = lib.heif_image_handle_get_item_id(handle)

    @property
    def has_alpha(self) -> bool:
        return bool(self._lib.heif_image_handle_has_alpha_channel(self._handle))

    def tiling(self) -> Tiling:
        raw = _Tiling(version=1)
        _check(self._lib.heif_image_handle_get_image_tiling(self._handle, 0, ctypes.byref(raw)))
        return Tiling(raw.num_columns, raw.num_rows, raw.tile_width, raw.tile_height,
                      raw.image_width, raw.image_height)

    def transforms(self) -> list[Transform]:
        """The item's transformations in order, crops measured on the picture they apply to."""
        ids = (ctypes.c_uint32 * _MAX_TRANSFORMS)()
        count = self._lib.heif_item_get_transformation_properties(
            self._context, self._item, ids, _MAX_TRANSFORMS)
        tiling = self.tiling()
        width, height = tiling.width, tiling.height
        found = []
        for prop in ids[:count]:
            kind = self._lib.heif_item_get_property_type(self._context, self._item, prop)
            if kind == _IROT:
                angle = self._lib.heif_item_get_property_transform_rotation_ccw(
                    self._context, self._item, prop)
                found.append(Transform("rotate", angle % 360))
                if angle in (90, 270):
                    width, height = height, width
            elif kind == _IMIR:
                found.append(Transform("mirror", self._lib.heif_item_get_property_transform_mirror(
                    self._context, self._item, prop)))
            elif kind == _CLAP:
                borders = [ctypes.c_int(0) for _ in range(4)]
                self._lib.heif_item_get_property_transform_crop_borders(
                    self._context, self._item, prop, width, height,
                    *[ctypes.byref(border) for border in borders])
                left, top, right, bottom = (border.value for border in borders)
                found.append(Transform("crop", borders=(left, top, right, bottom)))
                width, height = width - left - right, height - top - bottom
        return found

    def decode_tile(self, column: int, row: int) -> Image.Image:
        """Tile (`column`, `row`) of the coded grid as 8-bit RGB, untransformed."""
        options = self._lib.heif_decoding_options_alloc()
        image = _P()
        try:
            ctypes.cast(options, ctypes.POINTER(ctypes.c_uint8))[_IGNORE_TRANSFORMATIONS] = 1
            _check(self._lib.heif_image_handle_decode_image_tile(
                self._handle, ctypes.byref(image), _RGB, _INTERLEAVED_RGB, options, column, row))
            stride = ctypes.c_size_t()
            plane = self._lib.heif_image_get_plane_readonly2(image, _INTERLEAVED_CHANNEL,
                                                             ctypes.byref(stride))
            width = self._lib.heif_image_get_primary_width(image)
            height = self._lib.heif_image_get_primary_height(image)
            if not plane or width <= 0 or height <= 0:
                raise LibheifError(f"tile {column},{row} decoded to no pixels")
            data = ctypes.string_at(plane, stride.value * height)
            return Image.frombuffer("RGB", (width, height), data, "raw", "RGB", stride.value, 1)
        finally:
            if image:
                self._lib.heif_image_release(image)
            self._lib.heif_decoding_options_free(options)


@contextmanager
def open_primary(lib: ctypes.CDLL, path: Path) -> Iterator[Primary]:
    """The file's primary image; libheif reads the boxes now and each tile's data on demand."""
    context = lib.heif_context_alloc()
    handle = _P()
    try:
        _check(lib.heif_context_read_from_file(context, str(path).encode(), None))
        _check(lib.heif_context_get_primary_image_handle(context, ctypes.byref(handle)))
        yield Primary(lib, context, handle.value)  # type: ignore[arg-type]
    finally:
        if handle:
            lib.heif_image_handle_release(handle)
        lib.heif_context_free(context)


def _check(error: _Error) -> None:
    if error.code:
        message = (error.message or b"").decode("utf-8", "replace")
        raise LibheifError(message or f"libheif error {error.code}.{error.subcode}")
