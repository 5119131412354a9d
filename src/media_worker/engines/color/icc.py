"""What an ICC profile says about a picture's colours: its primaries and, from the ICC v4.4
`cicp` tag, its transfer (PQ and HLG pictures carry one), read from the tag table alone.

Pure Python, no colour engine: this runs on every still that carries a profile, SDR ones
included, so it must cost next to nothing (a profile is a few hundred bytes to a few KB; only
the header, the tag table and three or four small tags are read).

Primaries are recognised from the colorants (`rXYZ`, `gXYZ`, `bXYZ`): an ICC profile stores
them adapted to the D50 connection space (Bradford), so a Display P3 profile, whatever its
description, has colorants at the chromaticities below. The table was derived from each
standard's primaries and D65 white with the Bradford transform (the suite recomputes it with
colour-science).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media_worker.engines.color.cicp import matrix_name, primaries_name, transfer_name

_HEADER = 128
_TAG_ENTRY = 12
_MAX_TAGS = 200  # real profiles have 10 to 40; a corrupt count stops here
# (red, green, blue) colorant chromaticities (x, y) after adaptation to D50.
COLORANTS_D50: dict[str, tuple[tuple[float, float], ...]] = {
    "bt709": ((0.6484, 0.3309), (0.3212, 0.5978), (0.1559, 0.0660)),
    "p3": ((0.6820, 0.3193), (0.2846, 0.6746), (0.1559, 0.0660)),
    "bt2020": ((0.7085, 0.2935), (0.1902, 0.7753), (0.1292, 0.0471)),
    "adobe-rgb": ((0.6484, 0.3309), (0.2302, 0.7016), (0.1559, 0.0661)),
}
COLORANT_TOLERANCE = 0.006  # in x and y; profiles round colorants to s15Fixed16 and adapt them
# with slightly different matrices (Apple's and libvips' Display P3 differ by ~0.0005)


@dataclass(frozen=True)
class IccFacts:
    """`primaries`: a name from COLORANTS_D50, `other` (RGB, unrecognised), `cmyk`, `grey`;
    `transfer`/`matrix` only when the profile has a `cicp` tag."""

    primaries: str
    transfer: str | None = None
    matrix: str | None = None
    description: str = ""


def read_icc(profile: bytes) -> IccFacts | None:
    """The facts of a profile; None when it is not a readable ICC profile."""
    if len(profile) < _HEADER + 4 or profile[36:40] != b"acsp":
        return None
    space = profile[16:20]
    tags = _tag_table(profile)
    description = _description(profile, tags.get(b"desc"))
    cicp = _tag(profile, tags.get(b"cicp"))
    if cicp is not None and cicp[:4] == b"cicp" and len(cicp) >= 12:
        code_primaries, code_transfer, code_matrix = cicp[8], cicp[9], cicp[10]
        return IccFacts(primaries_name(code_primaries), transfer_name(code_transfer),
                        matrix_name(code_matrix), description)
    if space == b"CMYK":
        return IccFacts("cmyk", description=description)
    if space == b"GRAY":
        return IccFacts("grey", description=description)
    if space != b"RGB ":
        return IccFacts("other", description=description)
    colorants = [_xyz_chromaticity(_tag(profile, tags.get(name)))
                 for name in (b"rXYZ", b"gXYZ", b"bXYZ")]
    return IccFacts(_named_primaries(colorants, description), description=description)


def _named_primaries(colorants: list[tuple[float, float] | None], description: str) -> str:
    if any(colorant is None for colorant in colorants):
        # A LUT-based RGB profile: only its description can say (rare outside printing).
        return "p3" if "P3" in description else "other"
    for name, expected in COLORANTS_D50.items():
        if all(abs(got[0] - want[0]) <= COLORANT_TOLERANCE
               and abs(got[1] - want[1]) <= COLORANT_TOLERANCE
               for got, want in zip(colorants, expected, strict=True) if got is not None):
            return name
    return "other"


def _tag_table(profile: bytes) -> dict[bytes, tuple[int, int]]:
    (count,) = struct.unpack_from(">I", profile, _HEADER)
    table: dict[bytes, tuple[int, int]] = {}
    for index in range(min(count, _MAX_TAGS)):
        start = _HEADER + 4 + index * _TAG_ENTRY
        if start + _TAG_ENTRY > len(profile):
            break
        signature, offset, size = struct.unpack_from(">4sII", profile, start)
        table[signature] = (offset, size)
    return table


def _tag(profile: bytes, entry: tuple[int, int] | None) -> bytes | None:
    if entry is None:
        return None
    offset, size = entry
    if offset + size > len(profile) or size < 8:
        return None
    return profile[offset:offset + size]


def _xyz_chromaticity(tag: bytes | None) -> tuple[float, float] | None:
    if tag is None or tag[:4] != b"XYZ " or len(tag) < 20:
        return None
    x, y, z = (value / 65536 for value in struct.unpack_from(">iii", tag, 8))
    total = x + y + z
    return (x / total, y / total) if total > 0 else None


def _description(profile: bytes, entry: tuple[int, int] | None) -> str:
    tag = _tag(profile, entry)
    if tag is None:
        return ""
    if tag[:4] == b"desc" and len(tag) >= 12:  # ICC v2: ASCII with its length
        (length,) = struct.unpack_from(">I", tag, 8)
        return tag[12:12 + length].split(b"\0")[0].decode("latin-1", "replace")
    if tag[:4] == b"mluc" and len(tag) >= 28:  # ICC v4: the first record, UTF-16BE
        length, offset = struct.unpack_from(">II", tag, 20)
        return tag[offset:offset + length].decode("utf-16-be", "replace")
    return ""
