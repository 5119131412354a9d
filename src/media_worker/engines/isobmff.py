"""The codec of each video track of an MP4/MOV, read from its box tree, and the boxes of its
sample entry (Dolby Vision's `dvcC`/`dvvC`/`dvwC`, `mdcv`, `clli`, `colr`).

PyAV gives a stream FFmpeg has no decoder for no codec context, and with it no codec name or
tag; only FFmpeg's log names it, and PyAV delivers log lines asynchronously, so they cannot be
tied to the file that caused them. The sample entry of the track's `stsd` box is the codec's
four-character code (`avc1`, `hvc1`, `dav1`, Canon's `CRAW`), and reading it takes a few seeks.

The boxes are read from a local file or from the open file a demuxer is reading (an original
read in place): its position is put back after, so the demuxer goes on where it was, and the
`moov` it read a moment ago is in the reader's cache.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# An index bigger than this is not read: a long video's `moov` is a few MB, and this is only
# for naming a codec in an error message.
MAX_MOOV_BYTES = 64 * 1024 * 1024
_HEADER = 8
# A VisualSampleEntry's fixed fields before its child boxes (ISO/IEC 14496-12 12.1.3; the same
# in QuickTime): reserved (6), data_reference_index (2), then 70 bytes of picture fields.
_VISUAL_ENTRY_FIELDS = 78

BoxSource = Path | BinaryIO  # a local file, or a seekable file already open


@dataclass(frozen=True)
class SampleEntry:
    """The first sample entry of a video track: its type (`hvc1`, `dvh1`, `av01` …) and the
    body of each child box by type (the first of each)."""

    type: str
    boxes: dict[str, bytes]


def video_sample_entries(source: BoxSource) -> list[str]:
    """The sample-entry type of every video (`vide`) track, in file order; [] when the file is
    not ISO-BMFF or its index cannot be read."""
    return [entry.type for entry in video_sample_entry_boxes(source)]


def video_sample_entry_boxes(source: BoxSource) -> list[SampleEntry]:
    """The first sample entry of every video track, in file order, with its child boxes."""
    try:
        with _from_start(source) as stream:
            moov = _find_top_level(stream, b"moov")
    except OSError:
        return []
    if moov is None:
        return []
    entries = []
    for box_type, trak in _boxes(moov):
        if box_type == b"trak":
            entry = _video_entry(trak)
            if entry:
                entries.append(entry)
    return entries


@contextmanager
def _from_start(source: BoxSource) -> Iterator[BinaryIO]:
    """`source` read from its first byte: a path opened, an open file put back where it was."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield stream
        return
    position = source.tell()
    source.seek(0)
    try:
        yield source
    finally:
        source.seek(position)


def _find_top_level(stream: BinaryIO, wanted: bytes) -> bytes | None:
    while True:
        header = stream.read(_HEADER)
        if len(header) < _HEADER:
            return None
        size, box_type = struct.unpack(">I4s", header)
        body_size = None if size == 0 else size - _HEADER  # 0: the box runs to the end
        if size == 1:
            large = stream.read(8)
            if len(large) < 8:
                return None
            body_size = struct.unpack(">Q", large)[0] - 16
        if body_size is not None and body_size < 0:
            return None
        if box_type == wanted:
            if body_size is not None and body_size > MAX_MOOV_BYTES:
                return None
            return stream.read(MAX_MOOV_BYTES if body_size is None else body_size)
        if body_size is None:
            return None
        stream.seek(body_size, 1)


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each box in `data`; stops at the first one that does not fit."""
    offset = 0
    while offset + _HEADER <= len(data):
        size, box_type = struct.unpack_from(">I4s", data, offset)
        start = offset + _HEADER
        if size == 1 and offset + 16 <= len(data):
            size, start = struct.unpack_from(">Q", data, offset + 8)[0], offset + 16
        elif size == 0:
            size = len(data) - offset
        if size < start - offset or offset + size > len(data):
            return
        yield box_type, data[start:offset + size]
        offset += size


def _child(data: bytes, wanted: bytes) -> bytes | None:
    return next((body for box_type, body in _boxes(data) if box_type == wanted), None)


def _video_entry(trak: bytes) -> SampleEntry | None:
    mdia = _child(trak, b"mdia")
    if mdia is None:
        return None
    hdlr = _child(mdia, b"hdlr")  # version+flags (4), pre_defined (4), handler_type (4)
    if hdlr is None or hdlr[8:12] != b"vide":
        return None
    minf = _child(mdia, b"minf")
    stbl = _child(minf, b"stbl") if minf is not None else None
    stsd = _child(stbl, b"stsd") if stbl is not None else None
    if stsd is None or len(stsd) < 16:  # version+flags (4), entry_count (4), first entry
        return None
    entry = next(_boxes(stsd[8:]), None)
    children = {}
    if entry is not None and len(entry[1]) > _VISUAL_ENTRY_FIELDS:
        for box_type, body in _boxes(entry[1][_VISUAL_ENTRY_FIELDS:]):
            children.setdefault(box_type.decode("latin-1"), body)
    return SampleEntry(stsd[12:16].decode("latin-1"), children)
