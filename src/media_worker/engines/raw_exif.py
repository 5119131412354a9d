"""A camera RAW's capture facts (`takenAt`, `camera`, `exposure`, GPS) from its EXIF, read by
Pillow's TIFF directory parser and turned into facts by exif_facts.py: the same keys, formats
and rules as a JPEG's or a HEIC's.

Where each format keeps its EXIF:
- **TIFF-based** (DNG, GPR, CR2, NEF, ARW, PEF) and **ORF, RW2** (TIFF directories behind a
  magic of their own): IFD0 (make, model) points to the Exif and GPS directories. They are read
  from the file with seeks, directory by directory: the sensor data and the previews are never
  read, and what one directory's values take is bounded by the file's size (Pillow's check).
- **CR3** (ISO-BMFF): Canon's `uuid` box in `moov` holds CMT1 (IFD0), CMT2 (the Exif IFD) and
  CMT4 (the GPS IFD), each a TIFF of its own.
- **RAF**: Fujifilm's header points to the embedded JPEG, whose APP1 holds the EXIF block.

Not from LibRaw: rawpy (0.28) exposes its `other` and `lens`, but only after unpacking the
sensor data (the read a demosaic starts with, on a job the preview serves; an error where
LibRaw cannot decode, as on a GPR), with the time as a naive local time (no OffsetTimeOriginal,
no sub-seconds) and no GPS. Nor from exifread (PyPI): it reads neither CR3 nor RAF, has value
types of its own that the EXIF rules would need a second reading of, and was no faster than
Pillow on the corpus's ARW, DNG and GPR (about 1 ms each without maker notes, 55 ms with them
on the ARW, its default).

Hostile files: any failure (a directory past the end, offsets into nowhere, a box that does not
fit) only costs the facts it touches, as in exif_facts.py; nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from media_worker.engines.capture import Capture
from media_worker.engines.exif_facts import capture_of_exif_bytes, exif_capture, ifd_capture
from media_worker.engines.isobmff import _boxes, _find_top_level

# Canon's metadata box in a CR3's `moov` (uuid 85c0b687-820f-11e0-8111-f4ce462b6a48).
CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
# RAF header: where the embedded JPEG starts, and its length (big-endian, ExifTool's Fujifilm
# RAF header layout).
_RAF_JPEG_AT = 84
# Bytes of a RAF's JPEG read for its APP1: EXIF is at most 64 KiB and comes before the scan.
MAX_JPEG_HEAD = 256 * 1024
_EXIF_ID = b"Exif\x00\x00"


def raw_capture(path: Path, fmt: str) -> Capture:
    """The capture facts of the RAW at `path`, of format `fmt` (raw_sniff's name); empty when
    it has none or they cannot be read."""
    try:
        with path.open("rb") as stream:
            if fmt == "cr3":
                return _cr3_capture(stream)
            if fmt == "raf":
                return _raf_capture(stream)
            return tiff_capture(stream)
    except Exception:  # hostile metadata (Pillow, struct, slicing raise anything)
        return Capture()


def tiff_capture(stream: BinaryIO) -> Capture:
    """From a TIFF-structured file: its header's byte order and IFD0 offset, whatever its magic
    (`II*\\0`, ORF's `IIRO`, RW2's `IIU\\0`): Pillow is given a plain TIFF header for them."""
    head = stream.read(8)
    if head[:2] not in (b"II", b"MM") or len(head) < 8:
        return Capture()
    order = "little" if head[:2] == b"II" else "big"
    exif = Image.Exif()
    exif.endian = "<" if order == "little" else ">"
    exif.load_from_fp(stream, int.from_bytes(head[4:8], order))
    return exif_capture(exif)


def _cr3_capture(stream: BinaryIO) -> Capture:
    moov = _find_top_level(stream, b"moov")
    canon = next((body[16:] for box_type, body in _boxes(moov or b"")
                  if box_type == b"uuid" and body[:16] == CANON_UUID), None)
    if canon is None:
        return Capture()
    directories = {box_type: body for box_type, body in _boxes(canon)
                   if box_type in (b"CMT1", b"CMT2", b"CMT4")}
    return ifd_capture(_directory(directories.get(b"CMT1")),
                       _directory(directories.get(b"CMT2")),
                       lambda: _directory(directories.get(b"CMT4")))


def _directory(tiff: bytes | None) -> Mapping[int, Any]:
    """The first directory of a TIFF held in memory; empty when absent or unreadable."""
    if not tiff:
        return {}
    exif = Image.Exif()
    try:
        exif.load(tiff)
    except Exception:
        return {}
    return exif


def _raf_capture(stream: BinaryIO) -> Capture:
    header = stream.read(_RAF_JPEG_AT + 8)
    if len(header) < _RAF_JPEG_AT + 8:
        return Capture()
    jpeg_at = int.from_bytes(header[_RAF_JPEG_AT:_RAF_JPEG_AT + 4], "big")
    jpeg_length = int.from_bytes(header[_RAF_JPEG_AT + 4:_RAF_JPEG_AT + 8], "big")
    stream.seek(jpeg_at)
    block = jpeg_exif(stream.read(min(jpeg_length, MAX_JPEG_HEAD)))
    return capture_of_exif_bytes(block) if block else Capture()


def jpeg_exif(jpeg: bytes) -> bytes | None:
    """The EXIF block (`Exif\\0\\0` and its TIFF) of a JPEG's APP1, looked for up to the scan
    in the bytes given."""
    if not jpeg.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker = jpeg[at + 1]
        if marker in (0xD9, 0xDA):  # the end of the image, the start of the scan
            return None
        length = int.from_bytes(jpeg[at + 2:at + 4], "big")
        if length < 2:
            return None
        body = jpeg[at + 4:at + 2 + length]
        if marker == 0xE1 and body.startswith(_EXIF_ID):
            return body
        at += 2 + length
    return None
