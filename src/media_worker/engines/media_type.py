"""The type a file was sniffed as: which engine path it takes, its format and MIME type.

Apart from the sniffing itself (sniff.py, container_sniff.py) so that both it and the engines
that dispatch on it can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


def image(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.IMAGE, fmt, mime, brand)


def video(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.VIDEO, fmt, mime, brand)


def audio(fmt: str, mime: str, brand: str = "") -> MediaType:
    return MediaType(MediaKind.AUDIO, fmt, mime, brand)
