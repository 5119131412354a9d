"""Video: one representative frame through FFmpeg (PyAV), then the still-image path.

A representative frame is not the first one (often black or a fade-in): the decoder seeks near
10% of the duration (capped) and skips nearly uniform frames. The display matrix of phone
videos is applied, and non-square pixels are stretched to the display aspect.
"""

from __future__ import annotations

import statistics
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pyvips

from media_worker.engines.encode import largest_first, render_sizes
from media_worker.engines.images import decode_error
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
from media_worker.types import ThumbnailSize

SEEK_FRACTION = 0.1
SEEK_CAP_SECONDS = 5.0
MAX_FRAMES_EXAMINED = 30
UNIFORM_STDDEV = 6.0  # luma standard deviation below which a frame is "nearly uniform"


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
            frame = _representative_frame(container, stream, duration)
            if frame is None:
                raise CorruptMediaError(f"cannot decode {media_type.format.upper()}: "
                                        "no frame could be decoded")
            image, rotation = _upright_image(frame, stream)
            metadata = _metadata(container, stream, media_type, image, duration=duration,
                                 rotation=rotation)
    except av.FFmpegError as exc:
        raise CorruptMediaError(decode_error(media_type, str(exc), path)) from None
    box = largest_first(sizes)[0]
    largest = image.thumbnail_image(box.width, height=box.height, size="down")
    return RenderResult(render_sizes(largest, sizes, output), metadata)


def _video_stream(container: Any, media_type: MediaType) -> Any:
    if not container.streams.video:
        what = "audio-only file" if container.streams.audio else "no streams"
        raise UnsupportedMediaError(
            f"unsupported media: no video stream in this {media_type.format.upper()} ({what})")
    stream = container.streams.video[0]
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


def _representative_frame(container: Any, stream: Any, duration: float) -> Any:
    target = min(duration * SEEK_FRACTION, SEEK_CAP_SECONDS)
    if target > 0 and stream.time_base is not None:
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            container.seek(0)
    frame = _first_varied_frame(container, stream, target)
    if frame is None and target > 0:  # seeking past the only frames: start again from zero
        container.seek(0)
        frame = _first_varied_frame(container, stream, 0.0)
    return frame


def _first_varied_frame(container: Any, stream: Any, target: float) -> Any:
    """The first frame at or after `target` that is not nearly uniform, else the most varied
    frame seen."""
    best, best_spread, examined = None, -1.0, 0
    for frame in _decode(container, stream):
        if frame.time is not None and frame.time < target - 1e-3 and examined == 0:
            best = best or frame
            continue  # decoding up to the target from the preceding keyframe
        examined += 1
        spread = _luma_spread(frame)
        if spread > best_spread:
            best, best_spread = frame, spread
        if spread >= UNIFORM_STDDEV or examined >= MAX_FRAMES_EXAMINED:
            break
    return best


def _decode(container: Any, stream: Any) -> Any:
    try:
        yield from container.decode(stream)
    except (av.EOFError, av.InvalidDataError):
        return


def _luma_spread(frame: Any) -> float:
    small = frame.reformat(width=32, height=32, format="gray")
    plane = small.planes[0]
    data = bytes(plane)
    values = [data[row * plane.line_size + col] for row in range(32) for col in range(32)]
    return statistics.pstdev(values)


def _upright_image(frame: Any, stream: Any) -> tuple[pyvips.Image, int]:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    raw = bytes(plane)
    width, height = rgb.width, rgb.height
    if plane.line_size != width * 3:
        raw = b"".join(raw[y * plane.line_size:y * plane.line_size + width * 3]
                       for y in range(height))
    image = pyvips.Image.new_from_memory(raw, width, height, 3, "uchar").copy(
        interpretation="srgb")
    image = _display_aspect(image, stream)
    rotation = (-round(frame.rotation or 0)) % 360  # display matrix: counter-clockwise
    if rotation in (90, 180, 270):
        image = image.rot(f"d{rotation}")
    return image, rotation


def _display_aspect(image: pyvips.Image, stream: Any) -> pyvips.Image:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not sar or Fraction(sar) in (0, 1):
        return image
    return image.resize(float(sar), vscale=1.0)


def _metadata(container: Any, stream: Any, media_type: MediaType, image: pyvips.Image, *,
              duration: float, rotation: int) -> dict[str, Any]:
    rate = stream.average_rate or stream.guessed_rate
    return {
        "kind": "video", "format": media_type.format, "mimeType": media_type.mime_type,
        "width": image.width, "height": image.height, "duration": round(duration, 3),
        "codec": stream.codec_context.name, "frameRate": round(float(rate), 3) if rate else None,
        "rotation": rotation, "hasAudio": bool(container.streams.audio),
    }
