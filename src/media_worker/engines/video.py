"""Video: one representative frame through FFmpeg (PyAV), then the still-image path.

A representative frame is not the first one (often black or a fade-in): the decoder seeks near
10% of the duration (capped) and skips nearly uniform frames, within a small decoding budget so
a long GOP or a stream of broken packets cannot make a thumbnail expensive. The display matrix
of phone videos is applied (rotation and mirroring, as the `ffmpeg` tool does), and non-square
pixels are stretched to the display aspect.
"""

from __future__ import annotations

import statistics
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pyvips

from media_worker.engines.encode import render_from_image
from media_worker.engines.images import decode_error
from media_worker.engines.isobmff import video_sample_entries
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
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
    *, max_pixels: int, max_seconds: float,
) -> RenderResult:
    """Thumbnails of a representative frame, and the video's metadata."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = _video_stream(container, media_type)
            duration = _duration(container, stream)
            _check_limits(stream, duration, max_pixels, max_seconds)
            reader = _FrameReader(container, stream)
            frame = _representative_frame(reader, duration)
            if frame is None:
                reason = f" ({reader.last_error})" if reader.last_error else ""
                raise CorruptMediaError(f"cannot decode {media_type.format.upper()}: "
                                        f"no frame could be decoded{reason}")
            image, transform = _upright_image(frame, stream)
            metadata = _metadata(container, stream, media_type, image, duration=duration,
                                 transform=transform)
    except av.FFmpegError as exc:
        raise CorruptMediaError(decode_error(media_type, _ffmpeg_message(exc), path)) from None
    return RenderResult(render_from_image(image, sizes, output), metadata)


def _ffmpeg_message(exc: av.FFmpegError) -> str:
    """FFmpeg's words without the errno number and the file name PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


# --- the stream and its limits --------------------------------------------------------------
def _video_stream(container: Any, media_type: MediaType) -> Any:
    """The first video stream FFmpeg has a decoder for (PyAV gives the others no codec
    context: Dolby Vision AV1 under `dav1` in FFmpeg before 7.1, Canon's `CRAW`)."""
    if not container.streams.video:
        what = "audio-only file" if container.streams.audio else "no streams"
        raise UnsupportedMediaError(
            f"unsupported media: no video stream in this {media_type.format.upper()} ({what})")
    decodable = [s for s in container.streams.video if s.codec_context is not None]
    if not decodable:
        entries = video_sample_entries(Path(container.name))
        codec = f" {entries[0]!r}" if entries else ""
        raise UnsupportedMediaError(
            f"unsupported codec{codec}: FFmpeg has no decoder for the video stream of this "
            f"{media_type.format.upper()}")
    stream = decodable[0]
    stream.thread_type = "AUTO"
    return stream


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _check_limits(stream: Any, duration: float, max_pixels: int, max_seconds: float) -> None:
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > max_pixels:
        raise LimitExceededError(
            f"video is {width}x{height} = {width * height} pixels per frame, over the limit "
            f"of {max_pixels} (MAX_PIXELS)")
    if duration > max_seconds:
        raise LimitExceededError(
            f"video lasts {duration:.0f} s, over the limit of {max_seconds:g} s "
            "(MAX_VIDEO_SECONDS)")


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
                    self.last_error = _ffmpeg_message(exc)
                    bad += 1
                    if bad >= MAX_BAD_PACKETS:
                        return
        except av.FFmpegError as exc:  # the demuxer itself gave up (truncated file)
            self.last_error = _ffmpeg_message(exc)


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
@dataclass(frozen=True)
class _DisplayTransform:
    """What the display matrix asks of a player: `rotation` (clockwise degrees, as reported),
    whether the picture is also mirrored, and the libvips steps that do both."""

    rotation: int = 0
    mirrored: bool = False
    steps: tuple[str, ...] = ()  # "d90", "d180", "d270" (clockwise), "fliphor", "flipver"

    def apply(self, image: pyvips.Image) -> pyvips.Image:
        for step in self.steps:
            if step == "fliphor":
                image = image.fliphor()
            elif step == "flipver":
                image = image.flipver()
            else:
                image = image.rot(step)
        return image


def _display_transform(frame: Any) -> _DisplayTransform:
    """Read the display matrix the way FFmpeg's autorotate does: the rotation, plus a mirror
    where the matrix also reflects (e.g. [0 1; 1 0], a transpose)."""
    theta = round(-(frame.rotation or 0)) % 360  # frame.rotation is counter-clockwise
    if theta not in (0, 90, 180, 270):
        return _DisplayTransform()  # odd angles: shown as coded
    matrix = _display_matrix(frame)
    if matrix is None:
        return _DisplayTransform(theta, steps=(f"d{theta}",) if theta else ())
    if theta == 90:
        transposed = matrix[3] > 0  # 90° anticlockwise + vertical flip ("cclock_flip")
        return _DisplayTransform(90, transposed, ("d270", "flipver") if transposed else ("d90",))
    if theta == 270:
        flipped = matrix[3] < 0  # 90° clockwise + vertical flip ("clock_flip")
        return _DisplayTransform(270, flipped, ("d90", "flipver") if flipped else ("d270",))
    steps = (*(("fliphor",) if theta == 180 and matrix[0] < 0 else ()),
             *(("flipver",) if matrix[4] < 0 else ()))
    mirrored = len(steps) == 1
    return _DisplayTransform(theta, mirrored, steps)


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    """The 3x3 display matrix (16.16 fixed point), or None. PyAV 18 cannot list a frame's
    side data when FFmpeg attached a type it does not know (MV-HEVC's view id): ValueError."""
    try:
        side_data = frame.side_data["DISPLAYMATRIX"]
    except (KeyError, ValueError):
        return None
    return struct.unpack("=9i", bytes(side_data)) if side_data.buffer_size == 36 else None


def _upright_image(frame: Any, stream: Any) -> tuple[pyvips.Image, _DisplayTransform]:
    """The frame as 8-bit sRGB at display aspect, turned the way the player shows it."""
    width, height = _display_size(frame.width, frame.height, _sample_aspect(stream))
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC")
    raw = _packed_rows(rgb.planes[0], width * 3, height)
    image = pyvips.Image.new_from_memory(raw, width, height, 3, "uchar")
    transform = _display_transform(frame)
    return transform.apply(image.copy(interpretation="srgb")), transform


def _sample_aspect(stream: Any) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and Fraction(sar) > 0 else Fraction(1)


def _display_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """Stretch (never squeeze) the coded size to the display aspect of non-square pixels."""
    if sar > 1:
        return max(1, round(width * sar)), height
    if sar < 1:
        return width, max(1, round(height / sar))
    return width, height


def _metadata(container: Any, stream: Any, media_type: MediaType, image: pyvips.Image, *,
              duration: float, transform: _DisplayTransform) -> dict[str, Any]:
    rate = stream.guessed_rate or stream.average_rate
    codec = stream.codec_context.codec
    return {
        "kind": "video", "format": media_type.format, "mimeType": media_type.mime_type,
        "width": image.width, "height": image.height, "duration": round(duration, 3),
        "codec": codec.canonical_name or codec.name,
        "frameRate": round(float(rate), 3) if rate else None,
        "rotation": transform.rotation, "mirrored": transform.mirrored,
        "hasAudio": bool(container.streams.audio),
    }
