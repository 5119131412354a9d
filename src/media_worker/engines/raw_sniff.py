"""Camera RAW files, told from their first bytes.

Most RAW formats are TIFF files: a DNG, NEF, ARW or PEF starts with the same `II*\\0` as a
scanned TIFF, and libvips would happily show its first directory (often a 160x120 thumbnail, or
undemosaiced sensor data). So a TIFF header is looked into before it is taken for a picture: a
DNGVersion tag makes a DNG, Canon's `CR\\x02` marker a CR2, and a camera maker's name a NEF,
ARW or PEF when the first directory also shows what only a RAW has (sub-directories, a reduced
first image, colour-filter-array samples, a maker's own compression). The others have magics of
their own (ORF, RW2, RAF), and CR3 is ISO-BMFF of brand `crx `.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ByteOrder = Literal["little", "big"]

# Every format name the RAW path takes (engines/raw.py); `gpr` is GoPro's VC-5 DNG.
RAW_MIME_TYPES = {
    "dng": "image/x-adobe-dng", "gpr": "image/x-gopro-gpr", "cr2": "image/x-canon-cr2",
    "cr3": "image/x-canon-cr3", "nef": "image/x-nikon-nef", "arw": "image/x-sony-arw",
    "raf": "image/x-fuji-raf", "orf": "image/x-olympus-orf", "rw2": "image/x-panasonic-rw2",
    "pef": "image/x-pentax-pef",
}
RAW_FORMATS = frozenset(RAW_MIME_TYPES)
_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"FUJIFILMCCD-RAW ", "raf"),
    (b"IIRO\x08\x00\x00\x00", "orf"), (b"IIRS\x08\x00\x00\x00", "orf"),
    (b"MMOR\x00\x00\x00\x08", "orf"),
    (b"IIU\x00\x08\x00\x00\x00", "rw2"),
)
# Camera makers (TIFF Make, upper case) whose TIFF-based RAW has its own format name.
_MAKERS: tuple[tuple[str, str], ...] = (
    ("NIKON", "nef"), ("SONY", "arw"), ("PENTAX", "pef"), ("RICOH IMAGING", "pef"),
    ("ASAHI", "pef"),
)
_NEW_SUBFILE_TYPE, _COMPRESSION, _PHOTOMETRIC, _MAKE = 254, 259, 262, 271
_SUB_IFDS, _DNG_VERSION = 330, 50706
_ASCII, _SHORT = 2, 3  # TIFF field types
_REDUCED_IMAGE = 1  # NewSubfileType: a preview, the full picture being elsewhere
_CFA = 32803  # PhotometricInterpretation: colour filter array (sensor samples)
_VC5 = 9  # Compression: GoPro's VC-5 (what stock LibRaw cannot decode)
_PRIVATE_COMPRESSION = 32767  # and above: makers' own (Nikon 34713, Sony 32767, Pentax 65535)


@dataclass(frozen=True)
class _Entry:
    """One tag of a TIFF directory: its field type, count and the entry's 4 value bytes."""

    kind: int
    count: int
    field: bytes


def sniff_raw(head: bytes) -> str | None:
    """The RAW format of these first bytes (a key of RAW_MIME_TYPES), or None when they are
    not a camera RAW."""
    for magic, fmt in _MAGICS:
        if head.startswith(magic):
            return fmt
    if head[4:12] == b"ftypcrx ":
        return "cr3"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_raw(head)
    return None


def _tiff_raw(head: bytes) -> str | None:
    if head[8:11] == b"CR\x02":
        return "cr2"
    order: ByteOrder = "little" if head[:2] == b"II" else "big"
    tags = _first_directory(head, order)
    numbers = {tag: _number(entry, order) for tag, entry in tags.items()}
    make = _text(head, tags.get(_MAKE), order).upper()
    if _DNG_VERSION in tags:
        vc5 = make.startswith("GOPRO") or numbers.get(_COMPRESSION) == _VC5
        return "gpr" if vc5 else "dng"
    for prefix, fmt in _MAKERS:
        if make.startswith(prefix) and _shows_raw(numbers):
            return fmt
    return None


def _shows_raw(numbers: dict[int, int]) -> bool:
    """What a camera's plain TIFF (RGB, one directory) never has."""
    return (_SUB_IFDS in numbers or numbers.get(_NEW_SUBFILE_TYPE) == _REDUCED_IMAGE
            or numbers.get(_PHOTOMETRIC) == _CFA
            or numbers.get(_COMPRESSION, 0) >= _PRIVATE_COMPRESSION)


def _first_directory(head: bytes, order: ByteOrder) -> dict[int, _Entry]:
    """IFD0's entries; those past the bytes given are left out."""
    offset = int.from_bytes(head[4:8], order)
    if offset + 2 > len(head):
        return {}
    count = int.from_bytes(head[offset:offset + 2], order)
    entries = {}
    for start in range(offset + 2, min(offset + 2 + 12 * count, len(head) - 11), 12):
        tag, kind, length = (int.from_bytes(head[a:b], order)
                             for a, b in ((start, start + 2), (start + 2, start + 4),
                                          (start + 4, start + 8)))
        entries[tag] = _Entry(kind, length, head[start + 8:start + 12])
    return entries


def _number(entry: _Entry, order: ByteOrder) -> int:
    """A SHORT or LONG held in the entry (a SHORT fills its first two bytes)."""
    field = entry.field[:2] if entry.kind == _SHORT and entry.count == 1 else entry.field
    return int.from_bytes(field, order)


def _text(head: bytes, entry: _Entry | None, order: ByteOrder) -> str:
    """An ASCII tag's string, held in the entry or at the offset it holds ('' when it lies
    past the bytes given)."""
    if entry is None or entry.kind != _ASCII:
        return ""
    if entry.count <= 4:
        data = entry.field[:entry.count]
    else:
        position = int.from_bytes(entry.field, order)
        data = head[position:position + entry.count]
    return data.split(b"\x00", 1)[0].decode("latin-1")
