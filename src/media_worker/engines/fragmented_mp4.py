"""Fragmented MP4s read in place.

FFmpeg opens a fragmented MP4 by reading the header of every fragment (`moof`), one jump each:
a GET per fragment through the reader, hundreds for a long recording. Asked to
(`use_mfra_for`), its mov demuxer takes the fragments' places from the `mfra` index at the end
of the file instead, which FFmpeg's muxer and the recorders built on it (OBS) write: a few
GETs, and seeks still land on the right fragment. What it then reports as the duration is the
first fragment's, so the real one is read from the last fragment: a seek to the end (through
the same index) and the timestamps of its packets.

A file without an `mfra` (written live and never finished: a browser's MediaRecorder, some
cameras) has no index to jump with; FFmpeg reads each fragment's header as before, and its
duration is right.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO, Final

if TYPE_CHECKING:
    from media_worker.engines.probe import VideoFacts

# Given to FFmpeg for every original read in place: a file that is no MP4, or has no `mfra`,
# ignores it (an MP4 costs one read of its last bytes, cached when its `moov` is there too).
FORMAT_OPTIONS: Final = {"use_mfra_for": "pts"}
MFRO_BYTES: Final = 16  # the `mfro` box that ends an `mfra`: size, type, version, mfra's size
MAX_LAST_PACKETS: Final = 2000  # packets read from the last keyframe on, at most


def has_fragment_index(reader: BinaryIO) -> bool:
    """Whether the file ends with an `mfro` box, the trailer of an `mfra` index. The reader's
    position is put back: FFmpeg's own buffering relies on it."""
    position = reader.tell()
    try:
        size = reader.seek(0, io.SEEK_END)
        if size < MFRO_BYTES:
            return False
        reader.seek(size - MFRO_BYTES)
        tail = reader.read(MFRO_BYTES)
    finally:
        reader.seek(position)
    return len(tail) == MFRO_BYTES and tail[4:8] == b"mfro"


def with_indexed_duration(facts: VideoFacts, container: Any, stream: Any,
                          size: int) -> VideoFacts:
    """`facts` with the duration read from the last fragment, and the bitrate FFmpeg derives
    from it (the file's size over its duration), as FFmpeg reports both for a local copy."""
    duration = indexed_duration(container, stream)
    if not duration or duration <= facts.duration:
        return facts
    details = replace(facts.details, bitrate=int(size * 8 / duration) or None)
    return replace(facts, duration=duration, details=details)


def indexed_duration(container: Any, stream: Any) -> float | None:
    """Seconds from the stream's start to the end of its last packet, read from the last
    fragment; None when nothing could be read there. The caller seeks again before reading
    frames."""
    import av

    if stream.time_base is None:
        return None
    start = stream.start_time or 0
    try:
        container.seek(2**62, stream=stream, backward=True)
        end = None
        for count, packet in enumerate(container.demux(stream)):
            if count >= MAX_LAST_PACKETS:
                break
            if packet.pts is None:
                continue
            finish = packet.pts + (packet.duration or 0)
            end = finish if end is None else max(end, finish)
    except av.FFmpegError:
        return None
    return None if end is None else float((end - start) * stream.time_base)
