"""What a file really is, decided from its first bytes.

Uploads arrive with whatever name and declared MIME type the client chose; a `.jpg` may hold a
PNG, a HEIC or a video. The engine dispatches on the magic numbers only, so a wrong name can
neither send bytes to the wrong decoder nor smuggle in a type the worker does not handle.
Fixed signatures are matched here; container_sniff.py reads the types that ISO-BMFF brands and
EBML DocTypes name, raw_sniff.py camera RAW files, media_type.py holds what a sniff returns
(imported from here by most callers).
"""

from __future__ import annotations

from pathlib import Path

from media_worker.engines.container_sniff import iso_bmff, matroska
from media_worker.engines.media_type import MediaKind, MediaType, audio, image, video
from media_worker.engines.raw_sniff import RAW_MIME_TYPES, sniff_raw
from media_worker.engines.svg_root import has_svg_root
from media_worker.errors import UnsupportedMediaError

HEAD_BYTES = 16 * 1024  # enough for an XML prolog before `<svg` and every container header


def sniff(path: Path) -> MediaType:
    """The type of the file at `path`, from its content alone.

    Raises UnsupportedMediaError for an empty file or bytes of no type the worker handles,
    naming what was found so the row's error says something useful."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> MediaType:
    """`sniff` for bytes already in memory (the first few KiB of a file are enough)."""
    if not head:
        raise UnsupportedMediaError("unsupported media type: empty file")
    for detect in (_camera_raw, _simple_magic, _riff, iso_bmff, matroska, _ogg,
                   _audio_frames, _svg, _pdf):
        found = detect(head)
        if found is not None:
            return found
    raise UnsupportedMediaError(f"unsupported media type: {_describe_unknown(head)}")


# --- fixed signatures -----------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, MediaType], ...] = (
    (b"\xff\xd8\xff", image("jpeg", "image/jpeg")),
    (b"\x89PNG\r\n\x1a\n", image("png", "image/png")),
    (b"GIF87a", image("gif", "image/gif")),
    (b"GIF89a", image("gif", "image/gif")),
    (b"II*\x00", image("tiff", "image/tiff")),
    (b"MM\x00*", image("tiff", "image/tiff")),
    (b"II+\x00", image("tiff", "image/tiff")),  # BigTIFF
    (b"MM\x00+", image("tiff", "image/tiff")),
    (b"\xff\x0a", image("jxl", "image/jxl")),  # JPEG XL codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", image("jxl", "image/jxl")),  # JPEG XL container
    (b"FLV\x01", video("flv", "video/x-flv")),
    (b"\x00\x00\x01\xba", video("mpeg", "video/mpeg")),  # MPEG program stream
    (b"ID3", audio("mp3", "audio/mpeg")),
    (b"fLaC", audio("flac", "audio/flac")),
    (b"#!AMR", audio("amr", "audio/amr")),
)


def _simple_magic(head: bytes) -> MediaType | None:
    for signature, media in _SIGNATURES:
        if head.startswith(signature):
            return media
    if _is_bmp(head):
        return image("bmp", "image/bmp")
    if _is_ico(head):
        return image("ico", "image/vnd.microsoft.icon")
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return video("ts", "video/mp2t")  # MPEG transport stream: a sync byte every 188
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return audio("aiff", "audio/aiff")
    return None


def _is_bmp(head: bytes) -> bool:
    """`BM` alone is too weak (text can start with it): also require a known DIB header size."""
    dib_header_sizes = {12, 40, 52, 56, 64, 108, 124}
    return (head[:2] == b"BM" and len(head) >= 18
            and int.from_bytes(head[14:18], "little") in dib_header_sizes)


def _is_ico(head: bytes) -> bool:
    """Reserved 0, type 1 (icon), at least one entry whose reserved byte is 0."""
    if len(head) < 22 or head[:4] != b"\x00\x00\x01\x00":
        return False
    return int.from_bytes(head[4:6], "little") > 0 and head[9] == 0


def _camera_raw(head: bytes) -> MediaType | None:
    fmt = sniff_raw(head)  # before the TIFF and ISO-BMFF signatures RAW files share
    return image(fmt, RAW_MIME_TYPES[fmt]) if fmt else None


def _pdf(head: bytes) -> MediaType | None:
    """`%PDF-` within the first 1024 bytes, as PDF readers accept after leading junk."""
    if b"%PDF-" not in head[:1024]:
        return None
    return MediaType(MediaKind.DOCUMENT, "pdf", "application/pdf")


def _riff(head: bytes) -> MediaType | None:
    if head[:4] != b"RIFF":
        return None
    return {
        b"WEBP": image("webp", "image/webp"),
        b"WAVE": audio("wav", "audio/wav"),
        b"AVI ": video("avi", "video/x-msvideo"),
    }.get(head[8:12])


# --- Ogg, raw audio frames, SVG -------------------------------------------------------------

def _ogg(head: bytes) -> MediaType | None:
    if not head.startswith(b"OggS"):
        return None
    if b"\x80theora" in head[:512]:
        return video("ogv", "video/ogg")
    return audio("ogg", "audio/ogg")


def _audio_frames(head: bytes) -> MediaType | None:
    """MPEG audio (MP3) and ADTS (AAC) frames start with an 11/12-bit sync word."""
    if len(head) < 2 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x03
    if layer == 0:
        return audio("aac", "audio/aac") if (head[1] & 0xF6) == 0xF0 else None
    return audio("mp3", "audio/mpeg")


def _svg(head: bytes) -> MediaType | None:
    return image("svg", "image/svg+xml") if has_svg_root(head) else None


# --- messages -------------------------------------------------------------------------------

_KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"8BPS", "Photoshop document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "ELF executable"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 image"),
)


def _describe_unknown(head: bytes) -> str:
    for signature, name in _KNOWN_UNSUPPORTED:
        if head.startswith(signature):
            return name
    first = head[:8].hex(" ")
    return f"first bytes {first}{' …' if len(head) > 8 else ''}"
