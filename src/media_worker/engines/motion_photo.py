"""Motion photos: a still that carries a short video (Google's and Samsung's), or that names
the video kept beside it (Apple's Live Photos). Found from what the still says about itself,
never by searching its bytes for something that looks like a video:

- Google's Motion Photo XMP (also written by Samsung and others): `Camera:MotionPhoto="1"`
  and a `Container:Directory` whose items lie end to end after the primary picture, so an item
  starts where the items after it, counted back from the end of the file, begin (as Android's
  media3 reads it); the older `MicroVideo="1"` with `MicroVideoOffset`, counted back from the
  end of the file.
- Samsung's trailer: the `SEFT` directory at the very end of the file, whose
  `MotionPhoto_Data` entry holds the video (older JPEGs) or its offset and length (`mpv2`).
- Apple: the still of a Live Photo names its video by the identifier in its MakerNote
  (live_photo.py). The video is another upload, so from the still alone only that identifier
  is knowable: no offset, length or duration.

Every offset and length is the file's word, and a hostile file lies: the byte range must lie
inside the file and begin with an ISO-BMFF `ftyp` box, else the still is a plain still. Its
top-level boxes are walked to find where the video really ends (Samsung's XMP counts the
trailer after it as part of the video). Nothing reads past the file, and every read is
bounded (a segment, a directory, a box header).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from media_worker.engines.live_photo import content_identifier
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType

MOTION_FORMATS = frozenset({"jpeg", "heic"})
MAX_XMP_BYTES = 1 << 20
MAX_JPEG_SEGMENTS = 512  # APPn segments before the scan; a real photo has a handful
MAX_SAMSUNG_DIRECTORY = 64 * 1024
MAX_SAMSUNG_ENTRIES = 256
MAX_BOXES = 1024
_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_EXIF_ID = b"Exif\x00\x00"
_SAMSUNG_MOTION = b"MotionPhoto_Data"
# Top-level boxes of an MP4 or QuickTime file; the first box of another type ends the video.
_MP4_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid",
                        b"udta", b"meta", b"pdin", b"moof", b"mfra", b"styp", b"sidx",
                        b"ssix", b"prft", b"emsg", b"pnot"})
_ITEM = re.compile(rb"<rdf:li\b")
_DIRECTORY_OPEN = re.compile(rb"<G?Container:Directory\b")
_DIRECTORY_CLOSE = re.compile(rb"</G?Container:Directory>")


@dataclass(frozen=True)
class EmbeddedVideo:
    """The video inside the file: bytes `offset` to `offset + length`; `standard` says which
    metadata found it; `still_at_us` is when in the video the still was taken (Google's
    presentation timestamp), None when the file does not say."""

    standard: str
    offset: int
    length: int
    still_at_us: int | None = None


@dataclass(frozen=True)
class LivePhoto:
    """An Apple Live Photo's still: its video is the upload with the same identifier."""

    content_identifier: str


def with_motion_photo(path: Path, media_type: MediaType, result: RenderResult,
                      output: OutputSpec, *, max_pixels: int) -> RenderResult:
    """The still's result with `metadata.motionPhoto` where the still is one, and the
    embedded video's preview clip with MOTION_PHOTO_PREVIEW=on. A video that cannot be read
    costs the motion photo, never the still."""
    found = find_motion_photo(path, media_type)
    if found is None:
        return result
    if isinstance(found, LivePhoto):
        facts: dict[str, Any] = {"standard": "apple-live-photo", "embedded": False,
                                 "contentIdentifier": found.content_identifier}
        return RenderResult(result.thumbnails, {**result.metadata, "motionPhoto": facts})
    # Imported on the first motion photo: FFmpeg's libraries, as for the first video.
    from media_worker.engines.motion_video import read_embedded_video

    read = read_embedded_video(path, found, output, max_pixels=max_pixels)
    if read is None:
        return result
    facts, clip = read
    thumbnails = result.thumbnails + ([clip] if clip is not None else [])
    return RenderResult(thumbnails, {**result.metadata, "motionPhoto": facts})


def find_motion_photo(path: Path, media_type: MediaType) -> EmbeddedVideo | LivePhoto | None:
    """What the still says of its motion, checked against the file; None for a plain still
    (and for one whose metadata cannot be read: the still is rendered already)."""
    if media_type.format not in MOTION_FORMATS:
        return None
    try:
        with path.open("rb") as handle:
            return _find(handle, path, media_type)
    except Exception:  # hostile metadata (libheif, Pillow, struct raise anything): a plain still
        return None


def _find(handle: BinaryIO, path: Path,
          media_type: MediaType) -> EmbeddedVideo | LivePhoto | None:
    size = handle.seek(0, 2)
    xmp, exif = _jpeg_metadata(handle) if media_type.format == "jpeg" else _heif_metadata(path)
    for candidate in (_from_xmp(xmp, size), _from_samsung_trailer(handle, size)):
        if candidate is not None:
            checked = _checked(handle, size, candidate)
            if checked is not None:
                return checked
    identifier = content_identifier(exif)
    return LivePhoto(identifier) if identifier is not None else None


# --- where the still keeps its metadata -----------------------------------------------------
def _jpeg_metadata(handle: BinaryIO) -> tuple[bytes | None, bytes | None]:
    """The XMP packet and the EXIF block of a JPEG's APP1 segments, read up to the scan."""
    xmp = exif = None
    handle.seek(0)
    if handle.read(2) != b"\xff\xd8":
        return None, None
    for _ in range(MAX_JPEG_SEGMENTS):
        header = handle.read(4)
        if len(header) < 4 or header[0] != 0xFF or header[1] in (0xD9, 0xDA):
            break  # not a marker, the end of the image, or the start of the scan
        length = struct.unpack(">H", header[2:])[0]
        if length < 2:
            break
        if header[1] != 0xE1:
            handle.seek(length - 2, 1)
            continue
        body = handle.read(length - 2)
        if body.startswith(_XMP_ID) and xmp is None:
            xmp = body[len(_XMP_ID):]
        elif body.startswith(_EXIF_ID) and exif is None:
            exif = body
    return xmp, exif


def _heif_metadata(path: Path) -> tuple[bytes | None, bytes | None]:
    """The primary picture's XMP and EXIF, as libheif reads them (through pillow-heif)."""
    from pillow_heif import open_heif

    info = open_heif(path).info
    xmp, exif = info.get("xmp"), info.get("exif")
    return (xmp if isinstance(xmp, bytes) else None,
            exif if isinstance(exif, bytes) else None)


# --- Google: Motion Photo XMP -----------------------------------------------------------------
def _from_xmp(xmp: bytes | None, size: int) -> EmbeddedVideo | None:
    if not xmp or len(xmp) > MAX_XMP_BYTES:
        return None
    still_at = _integer(_property(xmp, rb"G?Camera:(?:MotionPhoto|MicroVideo)"
                                       rb"PresentationTimestampUs"))
    still_at_us = still_at if still_at is not None and still_at >= 0 else None
    if _property(xmp, rb"G?Camera:MotionPhoto") == b"1":
        directory = _directory(xmp)
        found = _from_directory(directory, size) if directory else None
        if found is not None:
            return EmbeddedVideo("google", *found, still_at_us)
    if _property(xmp, rb"G?Camera:MicroVideo") == b"1":
        offset = _integer(_property(xmp, rb"G?Camera:MicroVideoOffset"))
        if offset is not None and offset > 0:
            return EmbeddedVideo("google-microvideo", size - offset, offset, still_at_us)
    return None


def _directory(xmp: bytes) -> bytes | None:
    """The first `Container:Directory` element's content (two searches, no backtracking over
    a hostile packet)."""
    opening = _DIRECTORY_OPEN.search(xmp)
    closing = _DIRECTORY_CLOSE.search(xmp, opening.end()) if opening else None
    return xmp[opening.end():closing.start()] if opening and closing else None


def _from_directory(directory: bytes, size: int) -> tuple[int, int] | None:
    """(offset, length) of the first video item: the items after the primary lie end to end,
    back from the end of the file; a video item of length 0 shares the bytes of the item
    before it."""
    items = [_item(text) for text in _ITEM.split(directory)[1:]]
    end, found, video = size, None, False
    for mime, length in reversed(items[1:]):
        start = end - length
        video = video or mime.startswith(b"video/")
        if video and start != end:
            found, video = (start, length), False
        end = start
    return found


def _item(text: bytes) -> tuple[bytes, int]:
    mime = _property(text, rb"(?:Item|GContainerItem):Mime") or b""
    length = _integer(_property(text, rb"(?:Item|GContainerItem):Length"))
    return mime.lower(), max(length or 0, 0)


def _property(xmp: bytes, name: bytes) -> bytes | None:
    """An XMP property's value, written as an attribute or as an element."""
    found = re.search(rb"\b" + name + rb"\s*=\s*[\"']([^\"'<>]{0,64})[\"']", xmp)
    if found is None:
        found = re.search(rb"<" + name + rb">\s*([^<]{0,64}?)\s*</", xmp)
    return found.group(1).strip() if found else None


def _integer(text: bytes | None) -> int | None:
    return int(text) if text is not None and re.fullmatch(rb"-?\d{1,19}", text) else None


# --- Samsung: the SEFT trailer ----------------------------------------------------------------
def _from_samsung_trailer(handle: BinaryIO, size: int) -> EmbeddedVideo | None:
    """The `MotionPhoto_Data` entry of the trailer: 'SEFH', version, count, then 12-byte
    entries (type, distance back from 'SEFH' to the data, its length), little-endian; the
    directory's own length and 'SEFT' close the file."""
    if size < 8:
        return None
    handle.seek(size - 8)
    tail = handle.read(8)
    directory_length = struct.unpack("<I", tail[:4])[0]
    start = size - 8 - directory_length
    if tail[4:] != b"SEFT" or not 12 <= directory_length <= MAX_SAMSUNG_DIRECTORY or start < 0:
        return None
    handle.seek(start)
    directory = handle.read(directory_length)
    if directory[:4] != b"SEFH":
        return None
    count = min(struct.unpack("<I", directory[8:12])[0], MAX_SAMSUNG_ENTRIES)
    for index in range(count):
        entry = directory[12 + 12 * index:24 + 12 * index]
        if len(entry) < 12:
            return None
        back, length = struct.unpack("<II", entry[4:])
        found = _samsung_entry(handle, start - back, length, limit=start)
        if found is not None:
            return found
    return None


def _samsung_entry(handle: BinaryIO, position: int, length: int, *,
                   limit: int) -> EmbeddedVideo | None:
    """The video of a `MotionPhoto_Data` entry: a header (type, name length), the name, then
    the MP4 itself, or 'mpv2' and the big-endian offset and length of the video."""
    name_length = len(_SAMSUNG_MOTION)
    if position < 0 or position + length > limit or length < 8 + name_length:
        return None
    handle.seek(position)
    header = handle.read(8 + name_length + 12)
    named = header[4:8 + name_length] == struct.pack("<I", name_length) + _SAMSUNG_MOTION
    if not named:
        return None
    value = position + 8 + name_length
    pointer = header[8 + name_length:]
    if pointer[:4] == b"mpv2" and len(pointer) == 12:
        offset, video_length = struct.unpack(">II", pointer[4:])
        return EmbeddedVideo("samsung", offset, video_length)
    return EmbeddedVideo("samsung", value, position + length - value)


# --- the video's bytes ------------------------------------------------------------------------
def _checked(handle: BinaryIO, size: int, video: EmbeddedVideo) -> EmbeddedVideo | None:
    """The video with its length trimmed to its last MP4 box, or None where its range leaves
    the file or does not begin with an `ftyp` box."""
    if video.offset < 0 or video.length < 16 or video.offset + video.length > size:
        return None
    end = video.offset + video.length
    position, boxes = video.offset, 0
    while position + 8 <= end and boxes < MAX_BOXES:
        handle.seek(position)
        header = handle.read(16)
        box_size, box_type = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:
            box_size = struct.unpack(">Q", header[8:])[0]
        elif box_size == 0:
            box_size = end - position
        if box_type not in _MP4_BOXES or (boxes == 0 and box_type != b"ftyp"):
            break
        if box_size < 8 or position + box_size > end:
            return video if boxes else None  # cut short: the range as the file gives it
        position, boxes = position + box_size, boxes + 1
    if not boxes:
        return None
    return EmbeddedVideo(video.standard, video.offset, position - video.offset,
                         video.still_at_us)
