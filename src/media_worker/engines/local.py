"""The in-process engine: sniff the bytes, then hand the file to the image or video path."""

from __future__ import annotations

from media_worker.engines.images import render_image
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.sniff import sniff
from media_worker.engines.video import render_video
from media_worker.errors import UnsupportedMediaError
from media_worker.types import ThumbnailSize


class LocalEngine:
    """ThumbnailEngine on libvips (images) and FFmpeg via PyAV (video)."""

    def __init__(self, *, max_pixels: int, max_video_seconds: float) -> None:
        self._max_pixels = max_pixels
        self._max_video_seconds = max_video_seconds

    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        media_type = sniff(source.path)
        if media_type.kind == "image":
            return render_image(source.path, media_type, sizes, output,
                                max_pixels=self._max_pixels)
        if media_type.kind == "video":
            return render_video(source.path, media_type, sizes, output,
                                max_pixels=self._max_pixels, max_seconds=self._max_video_seconds)
        raise UnsupportedMediaError(
            f"unsupported media: no video stream ({media_type.format} audio file)")

    def close(self) -> None:
        """Nothing to release."""
