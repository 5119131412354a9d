"""DNGs made from ordinary pictures, for the RAW tests: the picture mosaiced to an RGGB Bayer
pattern in linear light, written by pidng, with an orientation tag and, optionally, an embedded
JPEG preview in a second directory (as cameras store it: in the sensor's orientation).

The DNG's colour matrix takes linear sRGB as the camera's own space, and its as-shot neutral is
white, so LibRaw's sRGB output shows the picture's own colours (brightened by its auto-exposure).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyvips
from pidng.core import RAW2DNG
from pidng.dng import DNGTags, Tag, dngIFD, dngTag

# XYZ (D65) to linear sRGB, the DNG ColorMatrix1 of a camera that sees in linear sRGB.
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415),
               (0.0557, -0.2040, 1.0570))
D65 = 21  # CalibrationIlluminant
CFA, YCBCR, JPEG = 32803, 6, 7  # PhotometricInterpretation, Compression values
WHITE = 65535


def stored(upright: pyvips.Image, orientation: int) -> pyvips.Image:
    """What a sensor records of an `upright` scene shot so that EXIF `orientation` (1, 3, 6
    or 8) turns it back upright."""
    turn = {1: None, 3: "d180", 6: "d270", 8: "d90"}[orientation]
    return upright if turn is None else upright.rot(turn)


def make_dng(path: Path, picture: pyvips.Image, *, orientation: int = 1,
             preview: pyvips.Image | None = None, preview_orientation: int | None = None
             ) -> Path:
    """A DNG of `picture` (8-bit sRGB, as the sensor stored it: see `stored`). `preview`, a
    JPEG of its own, goes in a second directory; `preview_orientation` writes an EXIF
    orientation into that JPEG (one the RAW's own tag contradicts)."""
    height, width = picture.height - picture.height % 2, picture.width - picture.width % 2
    dng = bytearray(_bayer_dng(_mosaic(picture.crop(0, 0, width, height)), orientation))
    if preview is not None:
        _append_preview(dng, _jpeg(preview, preview_orientation), preview.width,
                        preview.height)
    path.write_bytes(bytes(dng))
    return path


def _mosaic(picture: pyvips.Image) -> np.ndarray:
    """RGGB samples of the picture in linear light, 16-bit."""
    srgb = np.ndarray(buffer=picture.write_to_memory(), dtype=np.uint8,
                      shape=(picture.height, picture.width, picture.bands))[..., :3] / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    bayer = np.empty(linear.shape[:2])
    bayer[0::2, 0::2] = linear[0::2, 0::2, 0]
    bayer[0::2, 1::2] = linear[0::2, 1::2, 1]
    bayer[1::2, 0::2] = linear[1::2, 0::2, 1]
    bayer[1::2, 1::2] = linear[1::2, 1::2, 2]
    return np.round(bayer * WHITE).astype(np.uint16)


def _bayer_dng(samples: np.ndarray, orientation: int) -> bytes:
    height, width = samples.shape
    tags = DNGTags()
    for tag, value in (
            (Tag.ImageWidth, width), (Tag.ImageLength, height), (Tag.TileWidth, width),
            (Tag.TileLength, height), (Tag.Orientation, orientation),
            (Tag.PhotometricInterpretation, CFA), (Tag.SamplesPerPixel, 1),
            (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
            (Tag.CFAPattern, [0, 1, 1, 2]), (Tag.BlackLevel, 0), (Tag.WhiteLevel, WHITE),
            (Tag.CalibrationIlluminant1, D65), (Tag.AsShotNeutral, [[1, 1]] * 3),
            (Tag.ColorMatrix1, [[round(v * 10000), 10000] for row in XYZ_TO_SRGB
                                for v in row]),
            (Tag.Make, "Media Worker"), (Tag.Model, "Test Camera"),
            (Tag.UniqueCameraModel, "Media Worker Test Camera")):
        tags.set(tag, value)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    return bytes(writer.convert(samples))


def _jpeg(preview: pyvips.Image, orientation: int | None) -> bytes:
    if orientation is None:
        return preview.jpegsave_buffer(Q=90, keep=0)
    tagged = preview.copy()
    tagged.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return tagged.jpegsave_buffer(Q=90)


def _append_preview(dng: bytearray, jpeg: bytes, width: int, height: int) -> None:
    """The JPEG and a directory describing it (a reduced-resolution YCbCr image), chained
    after the raw image's directory: where LibRaw looks for thumbnails."""
    dng.extend(b"\x00" * (-len(dng) % 4))
    jpeg_at = len(dng)
    dng.extend(jpeg)
    dng.extend(b"\x00" * (-len(dng) % 4))
    directory = dngIFD()
    for tag, value in ((Tag.NewSubfileType, [1]), (Tag.ImageWidth, [width]),
                       (Tag.ImageLength, [height]), (Tag.BitsPerSample, [8, 8, 8]),
                       (Tag.Compression, [JPEG]), (Tag.PhotometricInterpretation, [YCBCR]),
                       (Tag.StripOffsets, [jpeg_at]), (Tag.SamplesPerPixel, [3]),
                       (Tag.RowsPerStrip, [height]), (Tag.StripByteCounts, [len(jpeg)])):
        directory.tags.append(dngTag(tag, value))
    directory_at = len(dng)
    dng.extend(b"\x00" * directory.dataLen())
    directory.setBuffer(dng, directory_at)
    directory.write()
    first = struct.unpack_from("<I", dng, 4)[0]
    entries = struct.unpack_from("<H", dng, first)[0]
    struct.pack_into("<I", dng, first + 2 + 12 * entries, directory_at)
