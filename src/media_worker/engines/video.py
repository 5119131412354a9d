"""Video: one representative frame through FFmpeg (PyAV), then the still-image path.

A representative frame is not the first one (often black or a fade-in): the decoder seeks near
10% of the duration (capped) and skips nearly uniform frames, within a small decoding budget so
a long GOP or a stream of broken packets cannot make a thumbnail expensive. The display matrix
of phone videos is applied (rotation and mirroring, as the `ffmpeg` tool does), and non-square
pixels are stretched to the display aspect. An HDR frame (PQ, HLG, Dolby Vision) is tone-mapped
to SDR at thumbnail size (video_hdr.py); an SDR frame takes the 8-bit path below (no HDR maths).
A preview clip and a storyboard, when asked for, come from the same open container
(video_preview.py, video_storyboard.py), the clip reading on from the representative frame.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import av

from media_worker.engines.color.detect_video import VideoColour, detect_video_colour
from media_worker.engines.decode_errors import decode_error, ffmpeg_message
from media_worker.engines.display import DisplayTransform
from media_worker.engines.encode import Framing, render_from_image
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult
from media_worker.engines.probe import (
    VideoFacts,
    video_metadata,
)
from media_worker.engines.render_clock import encoding
from media_worker.engines.sniff import MediaType
from media_worker.engines.video_frames import FramePainter, packed_rows, upright_image
from media_worker.engines.video_preview import render_preview
from media_worker.engines.video_reader import FrameReader
from media_worker.engines.video_source import VideoSource, named, opened_video
from media_worker.engines.video_storyboard import Prefetch, render_storyboard
from media_worker.errors import CorruptMediaError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

SEEK_FRACTION = 0.1
SEEK_CAP_SECONDS = 5.0
SHORT_CLIP_SECONDS = 1.0  # shorter clips are thumbnailed from their start
MAX_FRAMES_EXAMINED = 30
MAX_FRAMES_DECODED = 90  # including frames decoded between a keyframe and the seek target
UNIFORM_STDDEV = 6.0  # luma standard deviation (0-255) below which a frame is "nearly uniform"
SPREAD_SIDE = 32  # frames are judged on a SPREAD_SIDE x SPREAD_SIDE grey miniature


def render_video(
    source: VideoSource, media_type: MediaType, sizes: list[ThumbnailSize],
    output: OutputSpec, *, max_pixels: int, max_seconds: float, focus: Focus | None = None,
) -> RenderResult:
    """Thumbnails of a representative frame, and the video's metadata. `source` is a local
    file or a reader of the stored original (video_source.py), whose own failures are the
    job's error."""
    try:
        with opened_video(source, media_type, max_pixels=max_pixels,
                          max_seconds=max_seconds) as (container, stream, facts):
            reader = FrameReader(container, stream)
            frame = _representative_frame(reader, facts.duration)
            if frame is None:
                reason = f" ({reader.last_error})" if reader.last_error else ""
                raise CorruptMediaError(f"cannot decode {media_type.format.upper()}: "
                                        f"no frame could be decoded{reason}")
            colour = detect_video_colour(container, stream, frame, source)
            thumbnails, (width, height), transform = _stills(frame, facts, colour, sizes,
                                                             output, focus=focus)
            painter = FramePainter(facts.sample_aspect, transform, colour, output.tonemap)
            thumbnails += _clips(reader, frame, painter, facts, output,
                                 prefetch=getattr(source, "prefetch", None))
    except av.FFmpegError as exc:
        raise CorruptMediaError(decode_error(media_type, ffmpeg_message(exc),
                                             named(source))) from None
    metadata = video_metadata(media_type, facts, width=width, height=height,
                              transform=transform, gps=output.gps)
    metadata["hdr"] = colour.signal.to_metadata()
    return RenderResult(thumbnails, metadata)


def _stills(frame: Any, facts: VideoFacts, colour: VideoColour, sizes: list[ThumbnailSize],
            output: OutputSpec, *, focus: Focus | None
            ) -> tuple[list[RenderedThumbnail], tuple[int, int], DisplayTransform]:
    """Every size of the representative frame, its upright size and the display transform."""
    if colour.signal.is_hdr:
        from media_worker.engines.video_hdr import render_hdr_frame

        return render_hdr_frame(frame, facts.sample_aspect, colour, sizes, output, focus=focus)
    image, transform = upright_image(frame, facts.sample_aspect)
    thumbnails = render_from_image(image, sizes, output,
                                   Framing(image.width, image.height, focus))
    return thumbnails, (image.width, image.height), transform


def _clips(reader: FrameReader, frame: Any, painter: FramePainter, facts: VideoFacts,
           output: OutputSpec, *, prefetch: Prefetch | None) -> list[RenderedThumbnail]:
    """The preview clip and the storyboard, when asked for, from the container already open
    (one open and one probe per job); `prefetch`: the reader's, for an original read in
    place."""
    renditions = []
    if output.preview is not None:
        with encoding("preview"):
            renditions.append(render_preview(reader, frame, painter, output.preview, output,
                                             source_fps=facts.frame_rate))
    if output.storyboard is not None:
        with encoding("storyboard"):
            renditions += render_storyboard(reader, frame, painter, output.storyboard,
                                            duration=facts.duration,
                                            source_fps=facts.frame_rate, output=output,
                                            prefetch=prefetch)
    return renditions


# --- choosing a frame -----------------------------------------------------------------------
def _representative_frame(reader: FrameReader, duration: float) -> Any:
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
    return statistics.pstdev(packed_rows(small.planes[0], SPREAD_SIDE, SPREAD_SIDE))
