"""The still of an Apple Live Photo: the identifier that pairs it with its video.

iOS writes a ContentIdentifier (tag 0x0011 of Apple's MakerNote) into the stills of Live
Photos, and the same value as `com.apple.quicktime.content.identifier` into their videos; the
stills of other photos carry none (the corpus's other iPhone stills have the MakerNote without
it). Apple's note is 'Apple iOS', a version, the byte order, then an IFD whose offsets count
from the note's own start.
"""

from __future__ import annotations

import re
import struct

from PIL import Image
from PIL.ExifTags import IFD

MAX_ENTRIES = 512
_MAKER_NOTE = 0x927C
_APPLE_NOTE = b"Apple iOS\x00"
_HEADER = 16  # the signature, version and byte order, then the entry count
_ENTRY = 12
_CONTENT_IDENTIFIER = 0x0011
_ASCII = 2
_IDENTIFIER = re.compile(r"^[!-~]{1,64}$")  # printable, one token: a UUID in practice


def content_identifier(exif: bytes | None) -> str | None:
    """The Live Photo identifier of a still's EXIF block (with or without its `Exif\\0\\0`
    prefix), or None."""
    if not exif:
        return None
    parsed = Image.Exif()
    parsed.load(exif)
    note = parsed.get_ifd(IFD.Exif).get(_MAKER_NOTE)
    if not isinstance(note, bytes) or not note.startswith(_APPLE_NOTE) or len(note) < _HEADER:
        return None
    order = ">" if note[12:14] == b"MM" else "<"
    count = min(struct.unpack(order + "H", note[14:_HEADER])[0], MAX_ENTRIES)
    for index in range(count):
        entry = note[_HEADER + _ENTRY * index:_HEADER + _ENTRY * (index + 1)]
        if len(entry) < _ENTRY:
            return None
        tag, kind, length = struct.unpack(order + "HHI", entry[:8])
        if tag == _CONTENT_IDENTIFIER and kind == _ASCII:
            return _text(note, entry, length, order)
    return None


def _text(note: bytes, entry: bytes, length: int, order: str) -> str | None:
    """An ASCII value: in the entry itself up to 4 bytes, else at its offset in the note."""
    if length <= 4:
        raw = entry[8:8 + length]
    else:
        start = struct.unpack(order + "I", entry[8:])[0]
        raw = note[start:start + length]
    text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return text if _IDENTIFIER.match(text) else None
