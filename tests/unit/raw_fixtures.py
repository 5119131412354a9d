"""DNGs made from ordinary pictures, for the RAW tests: the picture mosaiced to an RGGB Bayer
pattern in linear light, written by pidng, with an orientation tag, the shot's EXIF (an Exif IFD
and, when asked, a GPS IFD, as cameras write them) and, optionally, an embedded JPEG preview in
a second directory (as cameras store it: in the sensor's orientation).

The DNG's colour matrix takes linear sRGB as the camera's own space, and its as-shot neutral is
white, so LibRaw's sRGB output shows the picture's own colours (brightened by its auto-exposure).

The other RAW formats are made by their headers only (`raw_header`): each format's magic and
layout around the same EXIF (TIFF directories for CR2, NEF, ARW, PEF, ORF and RW2; Canon's CMT
boxes for CR3; the embedded JPEG's APP1 for RAF), enough for the sniffer and the EXIF reader,
not for LibRaw.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvips
from pidng.core import RAW2DNG
from pidng.dng import DNGTags, Tag, Type, dngIFD, dngTag
from PIL import Image

# XYZ (D65) to linear sRGB, the DNG ColorMatrix1 of a camera that sees in linear sRGB.
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415),
               (0.0557, -0.2040, 1.0570))
D65 = 21  # CalibrationIlluminant
CFA, YCBCR, JPEG = 32803, 6, 7  # PhotometricInterpretation, Compression values
WHITE = 65535
EXIF_IFD, GPS_IFD = 34665, 34853  # IFD0's pointers to the Exif and GPS directories


@dataclass(frozen=True)
class Shot:
    """What a camera's EXIF says of a shot; `gps` (lat, lon, alt), signed degrees and metres,
    only where given."""

    taken: str = "2024:05:17 18:42:07"
    offset: str | None = "+02:00"
    subsec: str | None = "25"
    make: str = "Media Worker"
    model: str = "Test Camera"
    lens: str | None = "MW 35mm F1.8"
    iso: int = 400
    f_number: tuple[int, int] = (18, 10)
    exposure_time: tuple[int, int] = (1, 250)
    focal_length: tuple[int, int] = (35, 1)
    gps: tuple[float, float, float] | None = None


SHOT = Shot()
# What exif_facts makes of SHOT: the row's keys.
SHOT_FACTS = {
    "takenAt": "2024-05-17T18:42:07.250+02:00",
    "camera": {"make": "Media Worker", "model": "Test Camera", "lens": "MW 35mm F1.8"},
    "exposure": {"iso": 400, "fNumber": 1.8, "exposureTime": 0.004,
                 "exposureTimeText": "1/250", "focalLength": 35.0},
}
ASCII, SHORT, LONG, RATIONAL, BYTE = 2, 3, 4, 5, 1  # TIFF field types
_PIDNG_TYPES = {ASCII: Type.Ascii, SHORT: Type.Short, LONG: Type.Long,
                RATIONAL: Type.Rational, BYTE: Type.Byte}
Entry = tuple[int, int, "list | str"]  # tag, TIFF field type, value(s)


def stored(upright: pyvips.Image, orientation: int) -> pyvips.Image:
    """What a sensor records of an `upright` scene shot so that EXIF `orientation` (1, 3, 6
    or 8) turns it back upright."""
    turn = {1: None, 3: "d180", 6: "d270", 8: "d90"}[orientation]
    return upright if turn is None else upright.rot(turn)


def make_dng(path: Path, picture: pyvips.Image, *, orientation: int = 1,
             preview: pyvips.Image | None = None, preview_orientation: int | None = None,
             shot: Shot | None = SHOT, exif_in_ifd0: bool = False) -> Path:
    """A DNG of `picture` (8-bit sRGB, as the sensor stored it: see `stored`). `preview`, a
    JPEG of its own, goes in a second directory; `preview_orientation` writes an EXIF
    orientation into that JPEG (one the RAW's own tag contradicts). `shot`'s EXIF goes in an
    Exif IFD (and a GPS IFD), or with `exif_in_ifd0` in IFD0 itself, as TIFF/EP allows;
    `shot=None` leaves only IFD0's make and model."""
    height, width = picture.height - picture.height % 2, picture.width - picture.width % 2
    extra: list[Entry] = []
    if shot is not None:
        extra = _exif_entries(shot) if exif_in_ifd0 else [(EXIF_IFD, LONG, [0])]
        extra += [(GPS_IFD, LONG, [0])] if shot.gps is not None else []
    dng = bytearray(_bayer_dng(_mosaic(picture.crop(0, 0, width, height)), orientation,
                               shot or SHOT, extra))
    if shot is not None and not exif_in_ifd0:
        _point_to(dng, EXIF_IFD, _append_directory(dng, _exif_entries(shot)))
    if shot is not None and shot.gps is not None:
        _point_to(dng, GPS_IFD, _append_directory(dng, _gps_entries(shot.gps)))
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


def _bayer_dng(samples: np.ndarray, orientation: int, shot: Shot,
               extra: list[Entry]) -> bytes:
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
            (Tag.Make, shot.make), (Tag.Model, shot.model),
            (Tag.UniqueCameraModel, f"{shot.make} {shot.model}")):
        tags.set(tag, value)
    for number, kind, value in extra:
        tags.set((number, _PIDNG_TYPES[kind]), value)
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


# --- EXIF -----------------------------------------------------------------------------------


def _exif_entries(shot: Shot) -> list[Entry]:
    """The Exif IFD's entries of `shot` (DateTimeOriginal, OffsetTimeOriginal, SubSecTime-
    Original, ISO, FNumber, ExposureTime, FocalLength, LensModel)."""
    entries: list[Entry] = [
        (33434, RATIONAL, [list(shot.exposure_time)]), (33437, RATIONAL, [list(shot.f_number)]),
        (34855, SHORT, [shot.iso]), (36867, ASCII, shot.taken),
        (37386, RATIONAL, [list(shot.focal_length)])]
    if shot.offset is not None:
        entries.append((36881, ASCII, shot.offset))
    if shot.subsec is not None:
        entries.append((37521, ASCII, shot.subsec))
    if shot.lens is not None:
        entries.append((42036, ASCII, shot.lens))
    return entries


def _gps_entries(gps: tuple[float, float, float]) -> list[Entry]:
    lat, lon, alt = gps

    def dms(degrees: float) -> list[list[int]]:
        whole = int(abs(degrees))
        minutes = int((abs(degrees) - whole) * 60)
        seconds = round(((abs(degrees) - whole) * 60 - minutes) * 60 * 1000)
        return [[whole, 1], [minutes, 1], [seconds, 1000]]

    return [(1, ASCII, "N" if lat >= 0 else "S"), (2, RATIONAL, dms(lat)),
            (3, ASCII, "E" if lon >= 0 else "W"), (4, RATIONAL, dms(lon)),
            (5, BYTE, [0 if alt >= 0 else 1]), (6, RATIONAL, [[round(abs(alt) * 10), 10]])]


def _append_directory(dng: bytearray, entries: list[Entry]) -> int:
    """A directory of `entries` written by pidng at the end of `dng`; its offset."""
    dng.extend(b"\x00" * (-len(dng) % 4))
    directory = dngIFD()
    for number, kind, value in entries:
        directory.tags.append(dngTag((number, _PIDNG_TYPES[kind]), value))
    at = len(dng)
    dng.extend(b"\x00" * directory.dataLen())
    directory.setBuffer(dng, at)
    directory.write()
    return at


def _point_to(dng: bytearray, tag: int, offset: int) -> None:
    """IFD0's `tag` entry (a LONG placeholder) set to `offset`."""
    first = struct.unpack_from("<I", dng, 4)[0]
    for index in range(struct.unpack_from("<H", dng, first)[0]):
        at = first + 2 + 12 * index
        if struct.unpack_from("<H", dng, at)[0] == tag:
            struct.pack_into("<I", dng, at + 8, offset)
            return
    raise AssertionError(f"IFD0 has no tag {tag}")


# --- other RAW formats, by their headers ----------------------------------------------------
def tiff_directories(primary: list[Entry], exif: list[Entry], gps: list[Entry] | None, *,
                     big_endian: bool = False, magic: bytes | None = None,
                     marker: bytes = b"") -> bytes:
    """A TIFF of three directories, written here (not by Pillow, which reads them): IFD0 of
    `primary` plus the pointers to the Exif IFD and (with `gps`) the GPS IFD. `magic` replaces
    the first four bytes (ORF's `IIRO`, RW2's `IIU\\0`); `marker` sits between the header and
    IFD0 (CR2's `CR\\x02\\0` and raw IFD offset)."""
    order = ">" if big_endian else "<"
    out = bytearray((b"MM\x00*" if big_endian else b"II*\x00") + b"\x00" * 4 + marker)
    if magic is not None:
        out[:4] = magic
    pointers: list[Entry] = [(EXIF_IFD, LONG, [0])] + ([(GPS_IFD, LONG, [0])] if gps else [])
    ifd0_at = _write_directory(out, primary + pointers, order)
    struct.pack_into(order + "I", out, 4, ifd0_at)
    exif_at = _write_directory(out, exif, order)
    _patch_pointer(out, ifd0_at, EXIF_IFD, exif_at, order)
    if gps:
        _patch_pointer(out, ifd0_at, GPS_IFD, _write_directory(out, gps, order), order)
    return bytes(out)


def single_directory(entries: list[Entry]) -> bytes:
    """A little-endian TIFF of one directory (what each of a CR3's CMT boxes holds)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    struct.pack_into("<I", out, 4, _write_directory(out, entries, "<"))
    return bytes(out)


def _write_directory(out: bytearray, entries: list[Entry], order: str) -> int:
    out.extend(b"\x00" * (len(out) % 2))
    at = len(out)
    entries = sorted(entries, key=lambda entry: entry[0])
    data_at = at + 2 + 12 * len(entries) + 4
    table, data = struct.pack(order + "H", len(entries)), b""
    for number, kind, value in entries:
        raw = _field_bytes(kind, value, order)
        count = len(raw) if kind in (ASCII, BYTE) else len(value)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", data_at + len(data))
            data += raw + b"\x00" * (len(raw) % 2)
        table += struct.pack(order + "HHI", number, kind, count) + field
    out.extend(table + b"\x00" * 4 + data)
    return at


def _field_bytes(kind: int, value: list | str, order: str) -> bytes:
    if kind == ASCII:
        return str(value).encode() + b"\x00"
    if kind == BYTE:
        return bytes(value)
    if kind == RATIONAL:
        return b"".join(struct.pack(order + "II", *pair) for pair in value)
    return b"".join(struct.pack(order + ("H" if kind == SHORT else "I"), item)
                    for item in value)


def _patch_pointer(out: bytearray, ifd_at: int, tag: int, offset: int, order: str) -> None:
    for index in range(struct.unpack_from(order + "H", out, ifd_at)[0]):
        at = ifd_at + 2 + 12 * index
        if struct.unpack_from(order + "H", out, at)[0] == tag:
            struct.pack_into(order + "I", out, at + 8, offset)
            return
    raise AssertionError(f"no tag {tag} in the directory at {ifd_at}")


def _primary_entries(shot: Shot, *extra: Entry) -> list[Entry]:
    return [(271, ASCII, shot.make), (272, ASCII, shot.model), (274, SHORT, [1]), *extra]


# The first directory of each TIFF-based maker's RAW shows what only a RAW has (raw_sniff.py).
_REDUCED = (254, LONG, [1])  # NewSubfileType: a reduced (preview) image
TIFF_RAWS = {  # format: (make, byte order big-endian, magic, marker)
    "cr2": ("Canon", False, None, b"CR\x02\x00\x00\x00\x00\x00"),
    "nef": ("NIKON CORPORATION", True, None, b""),
    "arw": ("SONY", False, None, b""),
    "pef": ("PENTAX Corporation", False, None, b""),
    "orf": ("OLYMPUS IMAGING CORP.", False, b"IIRO", b""),
    "orf-big-endian": ("OLYMPUS CORPORATION", True, b"MMOR", b""),
    "rw2": ("Panasonic", False, b"IIU\x00", b""),
}


def raw_header(fmt: str, shot: Shot = SHOT) -> bytes:
    """The first bytes of a `fmt` RAW (a key of TIFF_RAWS, `raf` or `cr3`) holding `shot`'s
    EXIF where that format keeps it, and no picture."""
    if fmt == "cr3":
        return _cr3(shot)
    if fmt == "raf":
        return _raf(shot)
    make, big_endian, magic, marker = TIFF_RAWS[fmt]
    shot = Shot(**{**shot.__dict__, "make": make})
    gps = _gps_entries(shot.gps) if shot.gps else None
    return tiff_directories(_primary_entries(shot, _REDUCED), _exif_entries(shot), gps,
                            big_endian=big_endian, magic=magic, marker=marker)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _cr3(shot: Shot) -> bytes:
    """ISO-BMFF of brand `crx `: `moov` holds Canon's uuid box with CMT1 (IFD0), CMT2 (Exif
    IFD) and CMT4 (GPS IFD), then an empty `trak`, as a CR3 does."""
    shot = Shot(**{**shot.__dict__, "make": "Canon"})
    canon = (bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
             + _box(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00")
             + _box(b"CMT1", single_directory(_primary_entries(shot)))
             + _box(b"CMT2", single_directory(_exif_entries(shot)))
             + _box(b"CMT3", single_directory([(1, SHORT, [0])]))  # maker notes
             + _box(b"CMT4", single_directory(_gps_entries(shot.gps) if shot.gps
                                              else [(0, BYTE, [2, 3, 0, 0])])))
    ftyp = _box(b"ftyp", b"crx \x00\x00\x00\x01crx isom")
    return ftyp + _box(b"moov", _box(b"uuid", canon) + _box(b"trak", b""))


def _raf(shot: Shot) -> bytes:
    """Fujifilm's header (magic, version, camera name, the JPEG's offset and length at 84 and
    88) and the embedded JPEG carrying the EXIF in its APP1."""
    shot = Shot(**{**shot.__dict__, "make": "FUJIFILM"})
    gps = _gps_entries(shot.gps) if shot.gps else None
    tiff = tiff_directories(_primary_entries(shot), _exif_entries(shot), gps)
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), "olive").save(buffer, "JPEG", exif=b"Exif\x00\x00" + tiff)
    jpeg = buffer.getvalue()
    header = bytearray(b"FUJIFILMCCD-RAW 0201FF383501" + shot.model.encode().ljust(32, b"\x00"))
    header.extend(b"\x00" * (108 - len(header)))
    struct.pack_into(">II", header, 84, len(header), len(jpeg))
    return bytes(header) + jpeg
