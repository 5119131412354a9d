"""What a file really is, from its first bytes (magic numbers).

The declared mimeType and the key's extension are written by whoever uploaded the file; only
the bytes decide which decoder sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from media_worker.errors import UnsupportedMediaError

Kind = Literal["image", "video", "audio"]
HEAD_BYTES = 4096


@dataclass(frozen=True)
class MediaType:
    """The sniffed type: a kind, a short format name and its MIME type."""

    kind: Kind
    format: str
    mime_type: str


def _t(kind: Kind, fmt: str, mime: str) -> MediaType:
    return MediaType(kind, fmt, mime)


# Simple prefixes, checked in order.
_PREFIXES: list[tuple[bytes, MediaType]] = [
    (b"\xff\xd8\xff", _t("image", "jpeg", "image/jpeg")),
    (b"\x89PNG\r\n\x1a\n", _t("image", "png", "image/png")),
    (b"GIF87a", _t("image", "gif", "image/gif")),
    (b"GIF89a", _t("image", "gif", "image/gif")),
    (b"II*\x00", _t("image", "tiff", "image/tiff")),
    (b"MM\x00*", _t("image", "tiff", "image/tiff")),
    (b"BM", _t("image", "bmp", "image/bmp")),
    (b"\x00\x00\x01\x00", _t("image", "ico", "image/x-icon")),
    (b"\xff\x0a", _t("image", "jxl", "image/jxl")),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", _t("image", "jxl", "image/jxl")),
    (b"ID3", _t("audio", "mp3", "audio/mpeg")),
    (b"fLaC", _t("audio", "flac", "audio/flac")),
    (b"OggS", _t("audio", "ogg", "audio/ogg")),
]

# ISO base media file format: `ftyp` major/compatible brands.
_BRANDS: list[tuple[set[bytes], MediaType]] = [
    ({b"avif", b"avis"}, _t("image", "avif", "image/avif")),
    ({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"mif2"},
     _t("image", "heic", "image/heic")),
    ({b"M4A ", b"M4B ", b"F4A "}, _t("audio", "m4a", "audio/mp4")),
    ({b"qt  "}, _t("video", "mov", "video/quicktime")),
    ({b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3ge6", b"3ge7", b"3gg6", b"3g2a"},
     _t("video", "3gp", "video/3gpp")),
]
_MP4 = _t("video", "mp4", "video/mp4")
_SVG = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]", re.S)


def sniff(path: Path) -> MediaType:
    """The type of the file at `path`, or UnsupportedMediaError naming what was found."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        raise UnsupportedMediaError("unsupported media: the file is empty")
    found = _by_prefix(head) or _iso_bmff(head) or _riff(head) or _ebml(head) or _svg(head)
    if found is None:
        shown = " ".join(f"{b:02x}" for b in head[:12])
        raise UnsupportedMediaError(f"unsupported media type: unrecognised bytes {shown}")
    return found


def _by_prefix(head: bytes) -> MediaType | None:
    return next((kind for prefix, kind in _PREFIXES if head.startswith(prefix)), None)


def _iso_bmff(head: bytes) -> MediaType | None:
    if head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    for brand in [major, *sorted(compatible)]:
        for brands, kind in _BRANDS:
            if brand in brands and not (kind.kind == "image" and brand != major
                                        and _has_video_brand(major)):
                return kind
    return _MP4


def _has_video_brand(major: bytes) -> bool:
    return major in {b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"qt  ", b"dash", b"M4V "}


def _riff(head: bytes) -> MediaType | None:
    if head[:4] != b"RIFF":
        return None
    form = head[8:12]
    if form == b"WEBP":
        return _t("image", "webp", "image/webp")
    if form == b"WAVE":
        return _t("audio", "wav", "audio/wav")
    if form == b"AVI ":
        return _t("video", "avi", "video/x-msvideo")
    return None


def _ebml(head: bytes) -> MediaType | None:
    if head[:4] != b"\x1a\x45\xdf\xa3":
        return None
    if b"webm" in head[:64]:
        return _t("video", "webm", "video/webm")
    return _t("video", "mkv", "video/x-matroska")


def _svg(head: bytes) -> MediaType | None:
    text = head.lstrip(b"\xef\xbb\xbf")
    return _t("image", "svg", "image/svg+xml") if _SVG.match(text) else None
