"""The sniffer decides a file's type from its bytes alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from media_worker.engines.sniff import MediaKind, sniff, sniff_bytes
from media_worker.errors import UnsupportedMediaError


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


def _ebml(doc_type: bytes) -> bytes:
    children = b"\x42\x86\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(children)]) + children + b"\x18\x53\x80\x67"


SVG_WITH_PROLOG = (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n'
                   b"<!-- Generator: Adobe Illustrator -->\n"
                   b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                   b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
                   b'  <!ENTITY ns_flows "http://ns.adobe.com/Flows/1.0/">\n]>\n'
                   b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')

MAGIC_CASES = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", MediaKind.IMAGE, "jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", MediaKind.IMAGE, "png"),
    (b"GIF89a\x01\x00\x01\x00", MediaKind.IMAGE, "gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", MediaKind.IMAGE, "webp"),
    (b"II*\x00\x08\x00\x00\x00", MediaKind.IMAGE, "tiff"),
    (b"MM\x00*\x00\x00\x00\x08", MediaKind.IMAGE, "tiff"),
    (b"BM" + b"\x00" * 12 + b"\x28\x00\x00\x00" + b"\x00" * 8, MediaKind.IMAGE, "bmp"),
    (b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00" + b"\x00" * 12, MediaKind.IMAGE, "ico"),
    (SVG_WITH_PROLOG, MediaKind.IMAGE, "svg"),
    (b"\xff\x0a\xfa\x7f", MediaKind.IMAGE, "jxl"),
    (_ftyp(b"heic", b"mif1", b"heic"), MediaKind.IMAGE, "heic"),
    (_ftyp(b"mif1", b"mif1", b"heic"), MediaKind.IMAGE, "heic"),
    (_ftyp(b"avif", b"avif", b"mif1"), MediaKind.IMAGE, "avif"),
    (_ftyp(b"mif1", b"mif1", b"avif"), MediaKind.IMAGE, "avif"),
    (_ftyp(b"avis", b"avis", b"msf1"), MediaKind.IMAGE, "avif"),
    (_ftyp(b"isom", b"isom", b"avc1"), MediaKind.VIDEO, "mp4"),
    (_ftyp(b"qt  ", b"qt  "), MediaKind.VIDEO, "mov"),
    (b"\x00\x00\x00\x08wide\x00\x00\x01\x00mdat", MediaKind.VIDEO, "mov"),
    (_ftyp(b"3gp4", b"isom", b"3gp4"), MediaKind.VIDEO, "3gp"),
    (_ftyp(b"XYZ1", b"mp42"), MediaKind.VIDEO, "mp4"),
    (_ftyp(b"M4A ", b"M4A ", b"isom"), MediaKind.AUDIO, "m4a"),
    (_ebml(b"webm"), MediaKind.VIDEO, "webm"),
    (_ebml(b"matroska"), MediaKind.VIDEO, "mkv"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", MediaKind.AUDIO, "wav"),
    (b"RIFF\x24\x00\x00\x00AVI LIST", MediaKind.VIDEO, "avi"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", MediaKind.AUDIO, "mp3"),
    (b"fLaC\x00\x00\x00\x22", MediaKind.AUDIO, "flac"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1e\x01vorbis", MediaKind.AUDIO, "ogg"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x2a\x80theora", MediaKind.VIDEO, "ogv"),
]


@pytest.mark.parametrize(("head", "kind", "fmt"), MAGIC_CASES,
                         ids=[f"{case[2]}-{i}" for i, case in enumerate(MAGIC_CASES)])
def test_magic_numbers_decide_kind_and_format(head: bytes, kind: MediaKind, fmt: str) -> None:
    media = sniff_bytes(head)
    assert (media.kind, media.format) == (kind, fmt)
    assert "/" in media.mime_type


def test_avif_sequence_is_told_apart_by_its_brand() -> None:
    assert sniff_bytes(_ftyp(b"avis", b"avis")).brand == "avis"
    assert sniff_bytes(_ftyp(b"avif", b"avif")).brand == "avif"


def test_misleading_extension_is_ignored(tmp_path: Path) -> None:
    png = tmp_path / "real.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    disguised = tmp_path / "x.jpg"
    shutil.copy(png, disguised)
    assert sniff(disguised).format == "png"


def test_empty_file_is_unsupported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.heic"
    empty.write_bytes(b"")
    with pytest.raises(UnsupportedMediaError, match="empty file"):
        sniff(empty)


def test_random_bytes_are_unsupported_and_shown(tmp_path: Path) -> None:
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(bytes(range(7, 200)))
    with pytest.raises(UnsupportedMediaError, match="first bytes 07 08 09"):
        sniff(noise)


def test_text_starting_with_bm_is_not_a_bmp() -> None:
    with pytest.raises(UnsupportedMediaError):
        sniff_bytes(b"BMW owners club newsletter, issue 12")


def test_xml_that_is_not_svg_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaError):
        sniff_bytes(b'<?xml version="1.0"?><html><body><svg/></body></html>')


def test_unknown_iso_bmff_brand_is_named() -> None:
    with pytest.raises(UnsupportedMediaError, match="xyz9"):
        sniff_bytes(_ftyp(b"xyz9", b"xyz9"))


def test_known_unsupported_documents_are_named() -> None:
    with pytest.raises(UnsupportedMediaError, match="Photoshop document"):
        sniff_bytes(b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03")


def test_corpus_formats_sniff_as_their_folder(corpus: Path) -> None:
    """images/formats/<format>/… must sniff as <format>, whatever the file is called."""
    wrong = {}
    for path in sorted((corpus / "images" / "formats").glob("*/*")):
        media = sniff(path)
        if (media.kind, media.format) != (MediaKind.IMAGE, path.parent.name):
            wrong[path.name] = (media.kind.value, media.format)
    assert wrong == {}


def test_corpus_videos_sniff_as_video(corpus: Path) -> None:
    kinds = {path.name: sniff(path).kind for path in (corpus / "videos").glob("*.*")}
    assert kinds
    assert {name: kind for name, kind in kinds.items() if kind is not MediaKind.VIDEO} == {}
