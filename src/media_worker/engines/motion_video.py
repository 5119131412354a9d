"""A motion photo's embedded video, read by PyAV through a window on its byte range: its facts
for `metadata.motionPhoto` and, with MOTION_PHOTO_PREVIEW=on, its preview clip.

The window is a file of its own to FFmpeg (offset 0 is the video's first byte, its end the
video's last), so a demuxer misled by the video's index can never read the still around it;
the colour's boxes (Dolby Vision's record, `clli`, `mdcv`) are read from the same window.
The clip is made by the video path's own clip maker (video_preview.py) from the container
opened here, painted as a video's (upright by the display matrix, HDR tone-mapped), and starts
at the video's first frame: a motion photo's few seconds are the motion, with no fade-in to
skip.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import av

from media_worker.engines.color.detect_video import detect_video_colour
from media_worker.engines.display import display_transform
from media_worker.engines.motion_photo import EmbeddedVideo
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.probe import stream_duration, video_facts
from media_worker.engines.render_clock import encoding
from media_worker.engines.video_frames import FramePainter
from media_worker.engines.video_preview import render_preview
from media_worker.engines.video_reader import FrameReader
from media_worker.renditions import PreviewSpec

_BRANDS = {b"qt  ": ("mov", "video/quicktime")}


class ByteWindow(io.RawIOBase):
    """Bytes `offset` to `offset + length` of an open file, seen as a whole file."""

    def __init__(self, handle: BinaryIO, offset: int, length: int) -> None:
        super().__init__()
        self._handle, self._offset, self._length = handle, offset, length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}
        if whence not in base or base[whence] + position < 0:
            raise OSError(f"cannot seek to {position} from {whence}")
        self._position = base[whence] + position
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        self._handle.seek(self._offset + self._position)
        count = self._handle.readinto(memoryview(buffer)[:wanted]) or 0
        self._position += count
        return count


def read_embedded_video(path: Path, video: EmbeddedVideo, output: OutputSpec, *,
                        max_pixels: int) -> tuple[dict[str, Any], RenderedThumbnail | None] | None:
    """`metadata.motionPhoto` and the clip (None when not asked for, or when no frame of the
    video decodes); None when the range does not open as a video at all."""
    try:
        with path.open("rb") as handle:
            brand = _brand(handle, video.offset)
            window = ByteWindow(handle, video.offset, video.length)
            with av.open(window, format="mp4", metadata_errors="ignore") as container:
                if not container.streams.video:
                    return None
                stream = container.streams.video[0]
                facts = _facts(video, container, stream, brand)
                spec = output.motion_preview
                decodable = stream.codec_context is not None
                clip = _clip(container, stream, window, spec=spec, output=output,
                             max_pixels=max_pixels) if spec is not None and decodable else None
    except Exception:  # a hostile video makes FFmpeg (or the painting) fail any way it likes
        return None
    return facts, clip


def _facts(video: EmbeddedVideo, container: Any, stream: Any, brand: bytes) -> dict[str, Any]:
    fmt, mime = _BRANDS.get(brand, ("mp4", "video/mp4"))
    context = stream.codec_context
    codec = (context.codec.canonical_name or context.codec.name) if context is not None else None
    facts: dict[str, Any] = {
        "standard": video.standard, "embedded": True, "offset": video.offset,
        "length": video.length, "format": fmt, "mimeType": mime, "codec": codec,
        "durationMs": round(stream_duration(container, stream) * 1000),
        "hasAudio": bool(container.streams.audio)}
    if video.still_at_us is not None:
        facts["stillAtMs"] = round(video.still_at_us / 1000)
    return facts


def _brand(handle: BinaryIO, offset: int) -> bytes:
    """The major brand of the video's `ftyp` box (`qt  ` for QuickTime)."""
    handle.seek(offset + 8)
    return handle.read(4)


def _clip(container: Any, stream: Any, window: ByteWindow, *, spec: PreviewSpec,
          output: OutputSpec, max_pixels: int) -> RenderedThumbnail | None:
    """The preview from the first frame; the colour from the stream, its frames and the
    video's boxes in `window`."""
    stream.thread_type = "AUTO"
    facts = video_facts(container, stream)
    if facts.width * facts.height > max_pixels:
        return None
    reader = FrameReader(container, stream)
    first = next(reader.frames(), None)
    if first is None:
        return None
    colour = detect_video_colour(container, stream, first, window)
    painter = FramePainter(facts.sample_aspect, display_transform(first), colour,
                           output.tonemap)
    with encoding("preview"):
        return render_preview(reader, first, painter, spec, output,
                              source_fps=facts.frame_rate)
