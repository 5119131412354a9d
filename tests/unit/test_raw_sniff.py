"""Camera RAW files are told from their bytes: a TIFF-based RAW is not a TIFF to show."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from media_worker.engines.sniff import MediaKind, sniff, sniff_bytes

MAKE, SUB_IFDS, NEW_SUBFILE_TYPE, PHOTOMETRIC, COMPRESSION = 271, 330, 254, 262, 259
DNG_VERSION = 50706


def tiff(tags: dict[int, int | str | bytes], *, big_endian: bool = False,
         marker: bytes = b"") -> bytes:
    """A TIFF header and IFD0 holding `tags`: an int as a SHORT (a LONG above 65535), a str
    as ASCII, bytes as BYTEs; `marker` sits between the header and the directory (CR2's)."""
    order = ">" if big_endian else "<"
    start = 8 + len(marker)
    data_at = start + 2 + 12 * len(tags) + 4
    entries, data = b"", b""
    for tag, value in sorted(tags.items()):
        if isinstance(value, int):
            kind, count = (3, 1) if value <= 0xFFFF else (4, 1)
            field = struct.pack(order + ("H2x" if kind == 3 else "I"), value)
        else:
            raw = value.encode() + b"\x00" if isinstance(value, str) else value
            kind, count = (2 if isinstance(value, str) else 1), len(raw)
            field = raw.ljust(4, b"\x00") if count <= 4 else struct.pack(
                order + "I", data_at + len(data))
            data += raw if count > 4 else b""
        entries += struct.pack(order + "HHI", tag, kind, count) + field
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    return (magic + struct.pack(order + "I", start) + marker
            + struct.pack(order + "H", len(tags)) + entries + b"\x00" * 4 + data)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body


RAW_HEADERS = [
    pytest.param(tiff({DNG_VERSION: b"\x01\x04\x00\x00", MAKE: "Apple"}), "dng", id="dng"),
    pytest.param(tiff({DNG_VERSION: b"\x01\x06\x00\x00", MAKE: "Google", NEW_SUBFILE_TYPE: 1},
                      big_endian=True), "dng", id="phone-dng-big-endian"),
    pytest.param(tiff({DNG_VERSION: b"\x01\x03\x00\x00", MAKE: "GoPro"}), "gpr", id="gpr"),
    pytest.param(tiff({DNG_VERSION: b"\x01\x03\x00\x00", COMPRESSION: 9}), "gpr",
                 id="vc5-dng-is-gpr"),
    pytest.param(tiff({MAKE: "Canon"}, marker=b"CR\x02\x00\x00\x00\x00\x00"), "cr2", id="cr2"),
    pytest.param(tiff({MAKE: "NIKON CORPORATION", SUB_IFDS: 0x1000, NEW_SUBFILE_TYPE: 1},
                      big_endian=True), "nef", id="nef"),
    pytest.param(tiff({MAKE: "SONY", NEW_SUBFILE_TYPE: 1, COMPRESSION: 6}), "arw", id="arw"),
    pytest.param(tiff({MAKE: "PENTAX Corporation", PHOTOMETRIC: 32803}), "pef", id="pef"),
    pytest.param(tiff({MAKE: "RICOH IMAGING COMPANY, LTD.", COMPRESSION: 65535}), "pef",
                 id="ricoh-pef"),
    pytest.param(b"IIRO\x08\x00\x00\x00" + b"\x00" * 16, "orf", id="orf"),
    pytest.param(b"MMOR\x00\x00\x00\x08" + b"\x00" * 16, "orf", id="orf-big-endian"),
    pytest.param(b"IIU\x00\x08\x00\x00\x00" + b"\x00" * 16, "rw2", id="rw2"),
    pytest.param(b"FUJIFILMCCD-RAW 0201FF383501" + b"\x00" * 16, "raf", id="raf"),
    pytest.param(ftyp(b"crx ", b"crx ", b"isom"), "cr3", id="cr3"),
]


@pytest.mark.parametrize(("head", "fmt"), RAW_HEADERS)
def test_camera_raw_headers_sniff_as_their_format(head: bytes, fmt: str) -> None:
    media = sniff_bytes(head)
    assert (media.kind, media.format) == (MediaKind.IMAGE, fmt)
    assert media.mime_type.startswith("image/x-")


def test_a_cameras_plain_rgb_tiff_stays_a_tiff() -> None:
    """Some cameras save TIFF-RGB: a maker's name alone does not make a RAW."""
    assert sniff_bytes(tiff({MAKE: "NIKON CORPORATION", PHOTOMETRIC: 2})).format == "tiff"


def test_a_make_past_the_bytes_read_leaves_a_tiff() -> None:
    head = tiff({MAKE: "SONY ILCE-7M4 and a long model name", NEW_SUBFILE_TYPE: 1})
    assert sniff_bytes(head[:40]).format == "tiff"


def test_a_directory_count_past_the_bytes_read_is_not_an_error() -> None:
    assert sniff_bytes(b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 30).format == "tiff"


@pytest.mark.parametrize(("name", "fmt"), [
    ("raw/GOPR0024.GPR", "gpr"),
    ("malformed/file-type-fixture.cr3", "cr3"),
    ("malformed/file-type-fixture-sony-zv-e10.arw", "arw"),
    ("malformed/IMG_1361.dng", "dng"),
])
def test_corpus_raw_files_sniff_as_their_format(corpus: Path, name: str, fmt: str) -> None:
    assert sniff(corpus / "images" / name).format == fmt


def test_corpus_tiffs_stay_tiffs(corpus: Path) -> None:
    tiffs = sorted((corpus / "images" / "formats" / "tiff").iterdir())
    assert tiffs
    assert {sniff(path).format for path in tiffs} == {"tiff"}
