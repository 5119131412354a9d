"""Colour facts a container states outside the pixels: HEIF/AVIF item properties (`colr`
nclx or ICC, `clli`, `mdcv`, gain-map items) and PNG chunks (`cICP`, `iCCP`'s neighbours
`cLLi`/`mDCv`). Pure Python on a few KB read from the file's start: it runs for every HEIF,
AVIF and PNG, SDR ones included.

HEIF (ISO/IEC 23008-12) keeps an image's properties in `meta/iprp/ipco`, associated with items
by `meta/iprp/ipma`; the primary item is named by `pitm`. A grid image may leave `colr` to its
tiles (`dimg` references), as libheif reads it. A gain map is either an auxiliary image whose
`auxC` type is an HDR gain map (Apple `urn:com:apple:photo:2020:aux:hdrgainmap`, Samsung's
likewise) or an ISO 21496-1 `tmap` item (AVIF, and HEIC since iOS 18).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from media_worker.engines.isobmff import _boxes, _child, _find_top_level

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_CHUNKS = 64  # chunks looked at before the pixel data; text chunks never run to 64
_LUMINANCE_UNIT = 0.0001  # cd/m² per unit of mdcv / mDCv / cLLi (PNG)
_GAIN_MAP_AUX = b"hdrgainmap"


@dataclass(frozen=True)
class Nclx:
    primaries: int
    transfer: int
    matrix: int
    full_range: bool = True


@dataclass(frozen=True)
class ContainerColour:
    """What the container says; every field may be missing."""

    nclx: Nclx | None = None
    icc: bytes | None = None
    max_cll: float | None = None  # nits: the brightest pixel of the content
    mastering_peak: float | None = None  # nits: the mastering display's peak
    gain_map: bool = False


NOTHING = ContainerColour()


# --- HEIF / AVIF ----------------------------------------------------------------------------
def heif_colour(path: Path) -> ContainerColour:
    """The primary image's colour properties; NOTHING when the box tree cannot be read."""
    try:
        with path.open("rb") as stream:
            meta = _find_top_level(stream, b"meta")
    except OSError:
        return NOTHING
    if meta is None or len(meta) < 8:
        return NOTHING
    children = meta if meta[4:8] == b"hdlr" else meta[4:]  # QuickTime's meta has no version
    try:
        return _heif_colour(children)
    except (struct.error, IndexError, ValueError):
        return NOTHING  # a damaged box: the decoders will say what is wrong


def _heif_colour(meta: bytes) -> ContainerColour:
    primary = _primary_item(_child(meta, b"pitm"))
    item_types = _item_types(_child(meta, b"iinf"))
    references = _references(_child(meta, b"iref"))
    iprp = _child(meta, b"iprp")
    ipco = _child(iprp, b"ipco") if iprp is not None else None
    ipma = _child(iprp, b"ipma") if iprp is not None else None
    if ipco is None or ipma is None:
        return ContainerColour(gain_map=b"tmap" in item_types.values())
    properties = list(_boxes(ipco))
    associations = _associations(ipma)

    def of(item: int) -> list[tuple[bytes, bytes]]:
        return [properties[index - 1] for index in associations.get(item, [])
                if 0 < index <= len(properties)]

    own = of(primary) if primary is not None else []
    colours = [body for kind, body in own if kind == b"colr"]
    if not colours and primary is not None:
        tiles = references.get((b"dimg", primary), [])
        if tiles:
            colours = [body for kind, body in of(tiles[0]) if kind == b"colr"]
    nclx, icc = _colr(colours)
    gain_map = b"tmap" in item_types.values() or any(
        kind == b"auxC" and _GAIN_MAP_AUX in body for kind, body in properties)
    return ContainerColour(
        nclx=nclx, icc=icc, gain_map=gain_map,
        max_cll=_clli(next((body for kind, body in own if kind == b"clli"), None)),
        mastering_peak=_mdcv(next((body for kind, body in own if kind == b"mdcv"), None)))


def _primary_item(pitm: bytes | None) -> int | None:
    if pitm is None or len(pitm) < 6:
        return None
    if pitm[0] == 0:
        return struct.unpack_from(">H", pitm, 4)[0]
    return struct.unpack_from(">I", pitm, 4)[0]


def _item_types(iinf: bytes | None) -> dict[int, bytes]:
    if iinf is None:
        return {}
    start = 6 if iinf[0] == 0 else 8  # version/flags, then a 16- or 32-bit entry count
    types: dict[int, bytes] = {}
    for kind, infe in _boxes(iinf[start:]):
        if kind != b"infe" or infe[0] < 2:
            continue
        if infe[0] == 2:
            item, item_type = struct.unpack_from(">H2x4s", infe, 4)
        else:
            item, item_type = struct.unpack_from(">I2x4s", infe, 4)
        types[item] = item_type
    return types


def _references(iref: bytes | None) -> dict[tuple[bytes, int], list[int]]:
    """(reference type, from item) → to items."""
    if iref is None:
        return {}
    wide = iref[0] != 0
    id_format, id_size = (">I", 4) if wide else (">H", 2)
    found: dict[tuple[bytes, int], list[int]] = {}
    for kind, body in _boxes(iref[4:]):
        (source,) = struct.unpack_from(id_format, body, 0)
        (count,) = struct.unpack_from(">H", body, id_size)
        targets = [struct.unpack_from(id_format, body, id_size + 2 + i * id_size)[0]
                   for i in range(count)]
        found[(kind, source)] = targets
    return found


def _associations(ipma: bytes) -> dict[int, list[int]]:
    """item → 1-based ipco indices."""
    version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
    (count,) = struct.unpack_from(">I", ipma, 4)
    offset = 8
    found: dict[int, list[int]] = {}
    for _ in range(count):
        if version < 1:
            (item,) = struct.unpack_from(">H", ipma, offset)
            offset += 2
        else:
            (item,) = struct.unpack_from(">I", ipma, offset)
            offset += 4
        links = ipma[offset]
        offset += 1
        indices = []
        for _ in range(links):
            if flags & 1:
                (value,) = struct.unpack_from(">H", ipma, offset)
                indices.append(value & 0x7FFF)
                offset += 2
            else:
                indices.append(ipma[offset] & 0x7F)
                offset += 1
        found[item] = indices
    return found


def _colr(bodies: list[bytes]) -> tuple[Nclx | None, bytes | None]:
    nclx, icc = None, None
    for body in bodies:
        kind = body[:4]
        if kind == b"nclx" and len(body) >= 11 and nclx is None:
            primaries, transfer, matrix = struct.unpack_from(">HHH", body, 4)
            nclx = Nclx(primaries, transfer, matrix, bool(body[10] & 0x80))
        elif kind in (b"prof", b"rICC") and icc is None:
            icc = body[4:]
    return nclx, icc


def _clli(body: bytes | None) -> float | None:
    if body is None or len(body) < 4:
        return None
    max_cll = struct.unpack_from(">H", body, 0)[0]
    return float(max_cll) or None


def _mdcv(body: bytes | None) -> float | None:
    if body is None or len(body) < 24:
        return None
    peak = struct.unpack_from(">I", body, 16)[0] * _LUMINANCE_UNIT
    return peak or None


# --- PNG ------------------------------------------------------------------------------------
def png_colour(path: Path) -> ContainerColour:
    """`cICP` (H.273 code points, which win over any ICC profile), `cLLi` and `mDCv`, read
    from the chunks before the pixel data."""
    nclx, max_cll, peak = None, None, None
    try:
        with path.open("rb") as stream:
            if stream.read(8) != _PNG_SIGNATURE:
                return NOTHING
            for _ in range(_PNG_MAX_CHUNKS):
                head = stream.read(8)
                if len(head) < 8:
                    break
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    break
                if kind == b"cICP" and length == 4:
                    data = stream.read(4)
                    nclx = Nclx(data[0], data[1], data[2], bool(data[3]))
                    length = 0
                elif kind == b"cLLi" and length == 8:
                    max_cll = struct.unpack(">I", stream.read(4))[0] * _LUMINANCE_UNIT or None
                    length -= 4
                elif kind == b"mDCv" and length == 24:
                    data = stream.read(24)
                    peak = struct.unpack_from(">I", data, 16)[0] * _LUMINANCE_UNIT or None
                    length = 0
                stream.seek(length + 4, 1)  # the rest of the data, and the CRC
    except (OSError, struct.error, IndexError):
        return NOTHING
    return ContainerColour(nclx=nclx, max_cll=max_cll, mastering_peak=peak)
