"""Types read from a container's own header rather than from a fixed signature: the brands of
an ISO base media file (MP4, MOV, 3GP, HEIC, AVIF: the `ftyp` box's major and compatible
brands) and the DocType of an EBML document (Matroska, WebM)."""

from __future__ import annotations

from media_worker.engines.media_type import MediaType, audio, image, video
from media_worker.errors import UnsupportedMediaError

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


def iso_bmff(head: bytes) -> MediaType | None:
    if len(head) < 12:
        return None
    box_type = head[4:8]
    if box_type != b"ftyp":
        # QuickTime files older than the ftyp box start straight with their atoms.
        return video("mov", "video/quicktime") if box_type in _QUICKTIME_FIRST_BOXES else None
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
        return image("heic", mime, brand)
    if brand in ("avif", "avis"):
        return image("avif", "image/avif", brand)
    if brand in _GENERIC_HEIF_BRANDS:
        if "avif" in compatible:
            return image("avif", "image/avif", "avif")
        if "avis" in compatible:
            return image("avif", "image/avif", "avis")
        return image("heic", "image/heif", brand)
    if brand == "qt  ":
        return video("mov", "video/quicktime", brand)
    if brand.startswith("3g"):
        return video("3gp", "video/3gpp", brand)
    if brand in _MP4_BRANDS:
        return video("mp4", "video/mp4", brand)
    if brand in _AUDIO_MP4_BRANDS:
        return audio("m4a", "audio/mp4", brand)
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


def matroska(head: bytes) -> MediaType | None:
    if not head.startswith(_EBML_MAGIC):
        return None
    doc_type = _ebml_doc_type(head) or "matroska"  # the EBML header's default DocType
    if doc_type == "webm":
        return video("webm", "video/webm")
    if doc_type == "matroska":
        return video("mkv", "video/x-matroska")
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
