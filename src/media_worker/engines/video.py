"""Video: one representative frame through FFmpeg (PyAV), then the still-image path.

A representative frame is not the first one (often black or a fade-in): the decoder seeks near
10% of the duration (capped) and skips nearly uniform frames, within a small decoding budget so
a long GOP or a stream of broken packets cannot make a thumbnail expensive. The display matrix
of phone videos is applied (rotation and mirroring, as the `ffmpeg` tool does), and non-square
pixels are stretched to the display aspect. An HDR frame (PQ, HLG, Dolby Vision) is tone-mapped
to SDR at thumbnail size (video_hdr.py); an SDR frame takes the 8-bit path below, without numpy.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pyvips

from media_worker.engines.color.detect_video import detect_video_colour
from media_worker.engines.decode_errors import decode_error, ffmpeg_message
from media_worker.engines.display import DisplayTransform, display_transform
from media_worker.engines.encode import Framing, render_from_image
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.probe import (
    check_video_limits,
    display_size,
    video_facts,
    video_metadata,
    video_stream,
)
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

SEEK_FRACTION = 0.1
SEEK_CAP_SECONDS = 5.0
SHORT_CLIP_SECONDS = 1.0  # shorter clips are thumbnailed from their start
MAX_FRAMES_EXAMINED = 30
MAX_FRAMES_DECODED = 90  # including frames decoded between a keyframe and the seek target
MAX_PACKETS = 600
MAX_BAD_PACKETS = 30
UNIFORM_STDDEV = 6.0  # luma standard deviation (0-255) below which a frame is "nearly uniform"
SPREAD_SIDE = 32  # frames are judged on a SPREAD_SIDE x SPREAD_SIDE grey miniature


def render_video(
    path: Path, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, max_seconds: float, focus: Focus | None = None,
) -> RenderResult:
    """Thumbnails of a representative frame, and the video's metadata."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = video_stream(container, media_type, path)
            facts = video_facts(container, stream)
            check_video_limits(facts, max_pixels, max_seconds)
            reader = _FrameReader(container, stream)
            frame = _representative_frame(reader, facts.duration)
            if frame is None:
                reason = f" ({reader.last_error})" if reader.last_error else ""
                raise CorruptMediaError(f"cannot decode {media_type.format.upper()}: "
                                        f"no frame could be decoded{reason}")
            colour = detect_video_colour(container, stream, frame, path)
            if colour.signal.is_hdr:
                from media_worker.engines.video_hdr import render_hdr_frame

                thumbnails, (width, height), transform = render_hdr_frame(
                    frame, facts.sample_aspect, colour, sizes, output, focus=focus)
            else:
                image, transform = _upright_image(frame, facts.sample_aspect)
                width, height = image.width, image.height
                thumbnails = render_from_image(image, sizes, output,
                                               Framing(width, height, focus))
    except av.FFmpegError as exc:
        raise CorruptMediaError(decode_error(media_type, ffmpeg_message(exc), path)) from None
    metadata = video_metadata(media_type, facts, width=width, height=height,
                              transform=transform, gps=output.gps)
    metadata["hdr"] = colour.signal.to_metadata()
    return RenderResult(thumbnails, metadata)


# --- choosing a frame -----------------------------------------------------------------------
@dataclass
class _FrameReader:
    """Decodes frames packet by packet, so one broken packet costs a frame, not the video,
    and remembers FFmpeg's last complaint for the error message."""

    container: Any
    stream: Any
    last_error: str = field(default="", init=False)

    @property
    def start(self) -> float:
        """Timestamp of the stream's first frame (MPEG-TS and edited MP4s do not start at 0)."""
        if self.stream.start_time is None or self.stream.time_base is None:
            return 0.0
        return float(self.stream.start_time * self.stream.time_base)

    def seek(self, seconds: float) -> None:
        """Go to the keyframe at or before `seconds` after the start (0: the beginning)."""
        if self.stream.time_base is None:
            self.container.seek(0)
            return
        offset = int((self.start + seconds) / self.stream.time_base)
        try:
            self.container.seek(offset, stream=self.stream, backward=True)
        except av.FFmpegError:
            self.container.seek(0)

    def frames(self) -> Iterator[Any]:
        """Decoded frames from the current position, within the packet budget."""
        bad = 0
        try:
            for count, packet in enumerate(self.container.demux(self.stream)):
                if count >= MAX_PACKETS:
                    return
                try:
                    yield from packet.decode()
                except av.FFmpegError as exc:
                    self.last_error = ffmpeg_message(exc)
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        return
        except av.FFmpegError as exc:  # the demuxer itself gave up (truncated file)
            self.last_error = ffmpeg_message(exc)


def _representative_frame(reader: _FrameReader, duration: float) -> Any:
    target = 0.0 if duration < SHORT_CLIP_SECONDS else min(duration * SEEK_FRACTION,
                                                          SEEK_CAP_SECONDS)
    if target > 0:
        reader.seek(target)
        frame = _pick_frame(reader.frames(), reader.start + target)
        if frame is not None:
            return frame
    reader.seek(0)  # very short clips, and seeks that land past the last frame
    return _pick_frame(reader.frames(), reader.start)


def _pick_frame(frames: Iterator[Any], target: float) -> Any:
    """The first frame at or after `target` that is not nearly uniform; else the most varied
    frame examined (an all-black video still gets a thumbnail)."""
    best, best_spread, examined = None, -1.0, 0
    for decoded, frame in enumerate(frames, start=1):
        if best is None:
            best = frame
        early = frame.time is not None and frame.time < target - 1e-3
        if early and decoded < MAX_FRAMES_DECODED - MAX_FRAMES_EXAMINED:
            continue  # decoding forward from the keyframe before the target
        examined += 1
        spread = _luma_spread(frame)
        if spread >= UNIFORM_STDDEV:
            return frame
        if spread > best_spread:
            best, best_spread = frame, spread
        if examined >= MAX_FRAMES_EXAMINED:
            break
    return best


def _luma_spread(frame: Any) -> float:
    """Standard deviation of a tiny grey version: near 0 for black, white or flat frames."""
    small = frame.reformat(width=SPREAD_SIDE, height=SPREAD_SIDE, format="gray")
    return statistics.pstdev(_packed_rows(small.planes[0], SPREAD_SIDE, SPREAD_SIDE))


def _packed_rows(plane: Any, row_bytes: int, rows: int) -> bytes:
    """A plane's pixels without the padding FFmpeg adds at the end of each line."""
    raw = bytes(plane)
    stride = plane.line_size
    if stride == row_bytes:
        return raw[: row_bytes * rows]
    return b"".join(raw[y * stride:y * stride + row_bytes] for y in range(rows))


# --- from frame to upright picture ----------------------------------------------------------
def _upright_image(frame: Any, sar: Fraction) -> tuple[pyvips.Image, DisplayTransform]:
    """The frame as 8-bit sRGB at display aspect, turned the way the player shows it."""
    width, height = display_size(frame.width, frame.height, sar)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC")
    raw = _packed_rows(rgb.planes[0], width * 3, height)
    image = pyvips.Image.new_from_memory(raw, width, height, 3, "uchar")
    transform = display_transform(frame)
    return transform.apply(image.copy(interpretation="srgb")), transform
