"""A video's preview clip (VIDEO_PREVIEW): SECONDS from the representative frame, at FPS,
fit inside the box, silent and looping, as animated WebP or H.264 MP4.

The clip is sampled the way FFmpeg's `fps` filter samples: each output frame shows the latest
decoded frame at or before its time, so a 60 fps source gives every fifth frame to a 12 fps
clip and a 10 fps source repeats frames. Frames are scaled by FFmpeg straight to the clip's
size and painted as the stills are (upright, display aspect, HDR tone-mapped:
video_frames.py), then encoded one at a time, so memory does not grow with the clip.

Both encoders are FFmpeg's, through PyAV: `libwebp_anim` (libwebp's animation encoder, the one
libvips' webpsave also drives; called here without building a tall image of every frame
first, which measured cheaper: docs/performance.md) and `libx264`. An MP4 is written to a
temporary file because `faststart` (the index before the frames, so a browser starts playing
before the whole file arrives) rewrites the file in place.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any

import av
import pyvips

from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.video_frames import Fitted, FramePainter
from media_worker.engines.video_reader import MAX_PACKETS, FrameReader
from media_worker.renditions import PreviewSpec
from media_worker.types import ThumbnailSize

MIME_TYPES = {"webp": "image/webp", "mp4": "video/mp4"}
# libwebp's method 2, the stills' WebP effort (encode.WEBP_EFFORT, chosen in
# docs/performance.md): much cheaper than its default 4 for slightly more bytes.
WEBP_METHOD = 2
# H.264: x264's `veryfast` preset at its default quality; a clip this small is cheap to encode
# either way, and slower presets only shave bytes.
H264_PRESET = "veryfast"
H264_CRF = 23
ASSUMED_SOURCE_FPS = 60  # for the decoding budget, when the stream does not say its rate
TIME_SLACK = 1e-3  # seconds: container timestamps are rounded to their time base


def render_preview(reader: FrameReader, first: Any, painter: FramePainter, spec: PreviewSpec,
                   output: OutputSpec, *, source_fps: float | None) -> RenderedThumbnail:
    """The clip starting at `first` (the representative frame). Cut, never failed, past
    MAX_ANIMATION_FRAMES or MAX_ANIMATION_PIXELS; `frames` says how many were kept."""
    fitted = painter.fit(first, (spec.width, spec.height), even=spec.format == "mp4")
    count = clip_frames(spec, fitted, output)
    start = reader.time_of(first) or 0.0
    seconds = count / spec.fps
    budget = MAX_PACKETS + math.ceil(seconds * (source_fps or ASSUMED_SOURCE_FPS) * 1.5)
    if reader.follows(first):  # decoding goes on from the representative frame
        decoded = chain([first], reader.frames(budget))
    else:
        reader.seek(start)
        decoded = reader.frames(budget)
    frames = sampled_frames(reader, decoded, start=start, count=count, fps=spec.fps)
    data, encoded = encode_clip(_encoder_frames(frames, first, painter, fitted, spec.format),
                                spec, fitted, output.quality)
    return RenderedThumbnail(
        size=ThumbnailSize(name="preview", width=spec.width, height=spec.height),
        width=fitted.upright[0], height=fitted.upright[1], format=spec.format,
        mime_type=MIME_TYPES[spec.format], data=data, kind="preview", frames=encoded,
        duration_ms=round(encoded * 1000 / spec.fps))


def clip_frames(spec: PreviewSpec, fitted: Fitted, output: OutputSpec) -> int:
    """Frames the clip may have: SECONDS at FPS, within both animation limits (at least 1)."""
    pixels = fitted.upright[0] * fitted.upright[1]
    return max(1, min(round(spec.seconds * spec.fps), output.max_animation_frames,
                      output.max_animation_pixels // pixels))


def sampled_frames(reader: FrameReader, decoded: Iterator[Any], *, start: float, count: int,
                   fps: int) -> Iterator[Any]:
    """Up to `count` of the `decoded` frames, one per 1/fps from `start` (seconds since the
    stream's start): each the latest frame at or before its time. Frames repeat (the same
    object) where the source is slower than the clip; the clip ends early with the video."""
    step = 1 / fps
    slot, last, last_time = 0, None, start
    for frame in decoded:
        time = reader.time_of(frame)
        time = last_time + step if time is None else time
        if time < start - TIME_SLACK:
            continue  # decoded from the keyframe before the start
        while slot < count and start + slot * step < time - TIME_SLACK:
            yield last if last is not None else frame
            slot += 1
        if slot >= count:
            return
        last, last_time = frame, time
    if last is None:
        return
    end = last_time + _span(reader, last, step)  # the last frame holds until its own end
    while slot < count and start + slot * step < end - TIME_SLACK:
        yield last
        slot += 1


def _span(reader: FrameReader, frame: Any, step: float) -> float:
    """How long a frame is shown: its own duration, else one clip frame."""
    duration = getattr(frame, "duration", None)
    if duration and reader.stream.time_base is not None:
        return float(duration * reader.stream.time_base)
    return step


def _encoder_frames(frames: Iterator[Any], first: Any, painter: FramePainter,
                    fitted: Fitted, fmt: str) -> Iterator[Any]:
    """Each frame as the encoder takes it, converted once (a repeated frame reuses its
    conversion); the representative frame alone when nothing could be decoded after
    seeking back to it."""
    previous, converted = None, None
    for frame in frames:
        if frame is not previous:
            previous, converted = frame, _for_encoder(frame, painter, fitted, fmt)
        yield converted
    if previous is None:
        yield _for_encoder(first, painter, fitted, fmt)


def _for_encoder(frame: Any, painter: FramePainter, fitted: Fitted, fmt: str) -> Any:
    """4:2:0 YCbCr of the clip's size in limited range: BT.709 for H.264 (as tagged), BT.601
    for WebP (what its decoders assume). An SDR frame with nothing to turn gets there in
    one FFmpeg scale, as the `ffmpeg` command does it; the others are painted (turned,
    tone-mapped) in RGB first."""
    matrix = "ITU709" if fmt == "mp4" else "ITU601"
    if painter.shows_as_coded:
        width, height = fitted.coded
        return frame.reformat(width=width, height=height, format="yuv420p",
                              interpolation="BICUBIC", dst_colorspace=matrix,
                              dst_color_range="MPEG")
    rgb = _rgb_frame(painter.paint(frame, fitted))
    return rgb.reformat(format="yuv420p", dst_colorspace=matrix, dst_color_range="MPEG")


def _rgb_frame(picture: pyvips.Image) -> Any:
    """An 8-bit RGB picture as PyAV's frame, rows padded to FFmpeg's line size."""
    frame = av.VideoFrame(picture.width, picture.height, "rgb24")
    plane, row = frame.planes[0], picture.width * 3
    data = bytes(picture.write_to_memory())
    if plane.line_size != row:
        pad = bytes(plane.line_size - row)
        data = b"".join(data[y * row:(y + 1) * row] + pad for y in range(picture.height))
    plane.update(data)
    return frame


def encode_clip(frames: Iterator[Any], spec: PreviewSpec, fitted: Fitted,
                quality: int) -> tuple[bytes, int]:
    """The encoded clip and its number of frames (libwebp stores a frame identical to the
    one before as a longer delay of that one, so a WebP may hold fewer)."""
    width, height = fitted.upright
    rate = Fraction(spec.fps)
    with tempfile.TemporaryDirectory(prefix="media-worker-clip-") as folder:
        target = Path(folder) / f"preview.{spec.format}"
        options = {"loop": "0"} if spec.format == "webp" else {"movflags": "+faststart"}
        with av.open(str(target), "w", options=options) as container:
            stream = container.add_stream(
                "libwebp_anim" if spec.format == "webp" else "libx264", rate=rate)
            stream.width, stream.height = width, height
            _configure(stream, spec.format, quality)
            count = 0
            for count, frame in enumerate(frames, start=1):
                frame.pts, frame.time_base = count - 1, 1 / rate  # one tick per frame
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return target.read_bytes(), count


def _configure(stream: Any, fmt: str, quality: int) -> None:
    if fmt == "webp":
        stream.pix_fmt = "yuv420p"
        stream.options = {"quality": str(quality), "compression_level": str(WEBP_METHOD)}
        return
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": H264_PRESET, "crf": str(H264_CRF)}
    context = stream.codec_context
    context.colorspace, context.color_primaries, context.color_trc = 1, 1, 1  # BT.709
    context.color_range = 1  # limited ("TV") range, what every player expects of H.264
