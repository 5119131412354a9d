"""What a file really is, decided from its first bytes.

Uploads arrive with whatever name and declared MIME type the client chose; a `.jpg` may hold a
PNG, a HEIC or a video. The engine dispatches on the magic numbers only, so a wrong name can
neither send bytes to the wrong decoder nor smuggle in a type the worker does not handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from media_worker.engines.raw_sniff import RAW_MIME_TYPES, sniff_raw
from media_worker.engines.svg_root import has_svg_root
from media_worker.errors import UnsupportedMediaError

HEAD_BYTES = 16 * 1024  # enough for an XML prolog before `<svg` and every container header


class MediaKind(StrEnum):
    """Which engine path a file takes."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"  # PDF: its first page


@dataclass(frozen=True)
class MediaType:
    """The sniffed type. `brand` is the ISO-BMFF brand that decided it (empty for other
    containers): it tells an AVIF still (`avif`) from an AVIF sequence (`avis`)."""

    kind: MediaKind
    format: str
    mime_type: str
    brand: str = ""


def _image(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.IMAGE, fmt, mime, brand)


def _video(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.VIDEO, fmt, mime, brand)


def _audio(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.AUDIO, fmt, mime, brand)


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
    for detect in (_camera_raw, _simple_magic, _riff, _iso_bmff, _matroska, _ogg,
                   _audio_frames, _svg, _pdf):
        found = detect(head)
        if found is not None:
            return found
    raise UnsupportedMediaError(f"unsupported media type: {_describe_unknown(head)}")


# --- fixed signatures -----------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, MediaType], ...] = (
    (b"\xff\xd8\xff", _image("jpeg", "image/jpeg")),
    (b"\x89PNG\r\n\x1a\n", _image("png", "image/png")),
    (b"GIF87a", _image("gif", "image/gif")),
    (b"GIF89a", _image("gif", "image/gif")),
    (b"II*\x00", _image("tiff", "image/tiff")),
    (b"MM\x00*", _image("tiff", "image/tiff")),
    (b"II+\x00", _image("tiff", "image/tiff")),  # BigTIFF
    (b"MM\x00+", _image("tiff", "image/tiff")),
    (b"\xff\x0a", _image("jxl", "image/jxl")),  # JPEG XL codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", _image("jxl", "image/jxl")),  # JPEG XL container
    (b"FLV\x01", _video("flv", "video/x-flv")),
    (b"\x00\x00\x01\xba", _video("mpeg", "video/mpeg")),  # MPEG program stream
    (b"ID3", _audio("mp3", "audio/mpeg")),
    (b"fLaC", _audio("flac", "audio/flac")),
    (b"#!AMR", _audio("amr", "audio/amr")),
)


def _simple_magic(head: bytes) -> MediaType | None:
    for signature, media in _SIGNATURES:
        if head.startswith(signature):
            return media
    if _is_bmp(head):
        return _image("bmp", "image/bmp")
    if _is_ico(head):
        return _image("ico", "image/vnd.microsoft.icon")
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return _video("ts", "video/mp2t")  # MPEG transport stream: a sync byte every 188
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _audio("aiff", "audio/aiff")
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
    return _image(fmt, RAW_MIME_TYPES[fmt]) if fmt else None


def _pdf(head: bytes) -> MediaType | None:
    """`%PDF-` within the first 1024 bytes, as PDF readers accept after leading junk."""
    if b"%PDF-" not in head[:1024]:
        return None
    return MediaType(MediaKind.DOCUMENT, "pdf", "application/pdf")


def _riff(head: bytes) -> MediaType | None:
    if head[:4] != b"RIFF":
        return None
    return {
        b"WEBP": _image("webp", "image/webp"),
        b"WAVE": _audio("wav", "audio/wav"),
        b"AVI ": _video("avi", "video/x-msvideo"),
    }.get(head[8:12])


# --- ISO base media file format (MP4, MOV, 3GP, HEIC, AVIF) ---------------------------------

_HEIC_BRANDS = frozenset({"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs"})
_GENERIC_HEIF_BRANDS = frozenset({"mif1", "msf1", "mif2", "miaf"})
_MP4_BRANDS = frozenset({
    "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42",
    "mp71", "avc1", "dash", "M4V ", "M4VH", "M4VP", "mmp4", "MSNV", "NDAS", "f4v ", "XAVC",
    "cmfc", "cmf2",
})
_AUDIO_MP4_BRANDS = frozenset({"M4A ", "M4B ", "M4P ", "F4A ", "F4B "})
_QUICKTIME_FIRST_BOXES = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def _iso_bmff(head: bytes) -> MediaType | None:
    if len(head) < 12:
        return None
    box_type = head[4:8]
    if box_type != b"ftyp":
        # QuickTime files older than the ftyp box start straight with their atoms.
        return _video("mov", "video/quicktime") if box_type in _QUICKTIME_FIRST_BOXES else None
    box_size = int.from_bytes(head[:4], "big")
    end = min(max(box_size, 16), len(head), 4096)
    major = head[8:12].decode("latin-1")
    compatible = [head[i:i + 4].decode("latin-1") for i in range(16, end - 3, 4)]
    media = _from_brand(major, compatible) or _from_compatible(compatible)
    if media is None:
        return _unsupported_brand(major)
    return media


def _from_brand(brand: str, compatible: list[str]) -> MediaType | None:
    """The type a single brand stands for; generic HEIF brands need the compatible list."""
    if brand in _HEIC_BRANDS:
        mime = "image/heic-sequence" if brand in {"hevc", "hevx", "hevm", "hevs"} else "image/heic"
        return _image("heic", mime, brand)
    if brand in ("avif", "avis"):
        return _image("avif", "image/avif", brand)
    if brand in _GENERIC_HEIF_BRANDS:
        if "avif" in compatible:
            return _image("avif", "image/avif", "avif")
        if "avis" in compatible:
            return _image("avif", "image/avif", "avis")
        return _image("heic", "image/heif", brand)
    if brand == "qt  ":
        return _video("mov", "video/quicktime", brand)
    if brand.startswith("3g"):
        return _video("3gp", "video/3gpp", brand)
    if brand in _MP4_BRANDS:
        return _video("mp4", "video/mp4", brand)
    if brand in _AUDIO_MP4_BRANDS:
        return _audio("m4a", "audio/mp4", brand)
    return None


def _from_compatible(compatible: list[str]) -> MediaType | None:
    for brand in compatible:
        media = _from_brand(brand, compatible)
        if media is not None:
            return media
    return None


def _unsupported_brand(major: str) -> MediaType:
    printable = major if major.isprintable() else major.encode("latin-1").hex(" ")
    raise UnsupportedMediaError(f"unsupported media type: ISO-BMFF file of brand {printable!r}")


# --- Matroska / WebM ------------------------------------------------------------------------

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = 0x4282


def _matroska(head: bytes) -> MediaType | None:
    if not head.startswith(_EBML_MAGIC):
        return None
    doc_type = _ebml_doc_type(head) or "matroska"  # the EBML header's default DocType
    if doc_type == "webm":
        return _video("webm", "video/webm")
    if doc_type == "matroska":
        return _video("mkv", "video/x-matroska")
    raise UnsupportedMediaError(f"unsupported media type: EBML document of type {doc_type!r}")


def _ebml_doc_type(head: bytes) -> str | None:
    """Walk the children of the EBML header element looking for DocType."""
    try:
        size, pos = _read_vint(head, 4, keep_marker=False)
        end = min(pos + size, len(head))
        while pos < end:
            element_id, pos = _read_vint(head, pos, keep_marker=True)
            length, pos = _read_vint(head, pos, keep_marker=False)
            if element_id == _EBML_DOCTYPE_ID:
                return head[pos:pos + length].rstrip(b"\x00").decode("ascii", "replace")
            pos += length
    except IndexError:
        return None
    return None


def _read_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer: its value and the position after it."""
    first = data[pos]
    if first == 0:
        raise IndexError("invalid EBML vint")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        raise IndexError("EBML vint past the end of the header")
    value = int.from_bytes(data[pos:pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, pos + length


# --- Ogg, raw audio frames, SVG -------------------------------------------------------------

def _ogg(head: bytes) -> MediaType | None:
    if not head.startswith(b"OggS"):
        return None
    if b"\x80theora" in head[:512]:
        return _video("ogv", "video/ogg")
    return _audio("ogg", "audio/ogg")


def _audio_frames(head: bytes) -> MediaType | None:
    """MPEG audio (MP3) and ADTS (AAC) frames start with an 11/12-bit sync word."""
    if len(head) < 2 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x03
    if layer == 0:
        return _audio("aac", "audio/aac") if (head[1] & 0xF6) == 0xF0 else None
    return _audio("mp3", "audio/mpeg")


def _svg(head: bytes) -> MediaType | None:
    return _image("svg", "image/svg+xml") if has_svg_root(head) else None


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
