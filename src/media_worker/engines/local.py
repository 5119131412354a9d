"""The in-process engine: sniff the bytes, then hand the file to the image or video path.

A video or a PDF the processor did not download (SourceMedia.path None) is read in place: the
engine opens a reader of the stored object through its own storage adapter (built in the
decoder process: clients do not cross processes) and FFmpeg decodes from it, fetching the
container's index and the packets around the frames it uses, or PDFium draws the first page
from it, fetching the document's structure and that page's objects: never the whole file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pyvips

from media_worker.engines.decode_budget import DecodeBudget
from media_worker.engines.images import render_image
from media_worker.engines.placeholders.of_thumbnails import placeholder_metadata
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.probe import MAX_HEADER_PIXELS, configure_libvips
from media_worker.engines.raw_sniff import RAW_FORMATS
from media_worker.engines.render_clock import measured
from media_worker.engines.sniff import MediaKind, MediaType, sniff
from media_worker.engines.video_source import VideoSource
from media_worker.errors import (
    CorruptMediaError,
    UnsupportedMediaError,
)
from media_worker.originals import BYTES_READ, opened_in_place
from media_worker.storage.port import ObjectStorage
from media_worker.types import ThumbnailSize


class LocalEngine:
    """ThumbnailEngine on libvips (images) and FFmpeg via PyAV (video)."""

    def __init__(self, *, max_pixels: int, max_video_seconds: float,
                 budget: DecodeBudget | None = None,
                 max_header_pixels: int = MAX_HEADER_PIXELS,
                 storage: ObjectStorage | None = None) -> None:
        """`storage` reads originals in place (None: only local copies can be rendered)."""
        self._max_pixels = max_pixels
        self._max_header_pixels = max_header_pixels
        self._max_video_seconds = max_video_seconds
        self._budget = budget
        self._storage = storage
        configure_libvips()  # untrusted loaders blocked, no operation cache

    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        """Render every size (one thumbnail per size, in the order given), timed."""
        with measured() as timings:
            result = self._render(source, sizes, output)
        return replace(result, timings=tuple(timings))

    def _render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        if source.path is None:
            return self._render_in_place(source, sizes, output)
        media_type = sniff(source.path)
        try:
            camera_or_page = _raw_or_pdf(media_type)
            if camera_or_page is not None:
                return _with_placeholders(camera_or_page(
                    source.path, media_type, sizes, output, max_pixels=self._max_pixels,
                    budget=self._budget, focus=source.focus), output)
            if media_type.kind is MediaKind.IMAGE:
                result = render_image(source.path, media_type, sizes, output,
                                      max_pixels=self._max_pixels, budget=self._budget,
                                      focus=source.focus,
                                      max_header_pixels=self._max_header_pixels)
                return _with_placeholders(result, output)
            if media_type.kind is MediaKind.VIDEO:
                return self._render_video(source.path, media_type, sizes, output, source)
        except pyvips.Error as exc:  # a resize or encode failure the decoders did not catch
            raise _render_error(media_type, exc) from None
        raise UnsupportedMediaError(
            f"unsupported media: no video stream ({media_type.format} audio-only file)")

    def _render_in_place(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        """A video or a PDF rendered from a reader of the stored object; `bytesRead` says what
        it fetched. Only those come this way (the processor sniffed the object's head:
        originals.py)."""
        with opened_in_place(self._storage, source) as (reader, media_type):
            try:
                if media_type.kind is MediaKind.DOCUMENT:
                    from media_worker.engines.pdf import render_pdf

                    result = _with_placeholders(render_pdf(
                        reader, media_type, sizes, output, max_pixels=self._max_pixels,
                        budget=self._budget, focus=source.focus), output)
                else:
                    result = self._render_video(reader, media_type, sizes, output, source)
            except pyvips.Error as exc:
                raise _render_error(media_type, exc) from None
            fetched = reader.bytes_fetched
        return replace(result, metadata={**result.metadata, BYTES_READ: fetched})

    def _render_video(self, video: VideoSource, media_type: MediaType,
                      sizes: list[ThumbnailSize], output: OutputSpec,
                      source: SourceMedia) -> RenderResult:
        # Imported on the first video: FFmpeg's libraries add to the memory of every decoder
        # process (docs/performance.md), which a worker that only ever sees photos should
        # not pay.
        from media_worker.engines.video import render_video

        result = render_video(video, media_type, sizes, output, max_pixels=self._max_pixels,
                              max_seconds=self._max_video_seconds, focus=source.focus)
        return _with_placeholders(result, output)

    def close(self) -> None:
        """Close the storage adapter this engine reads originals in place with."""
        if self._storage is not None:
            self._storage.close()


def _raw_or_pdf(media_type: MediaType) -> Callable[..., RenderResult] | None:
    """The RAW or PDF path, imported on the first such file: LibRaw and PDFium add to the
    memory of every decoder process, which a worker that sees neither should not pay."""
    if media_type.format in RAW_FORMATS:
        from media_worker.engines.raw import render_raw

        return render_raw
    if media_type.kind is MediaKind.DOCUMENT:
        from media_worker.engines.pdf import render_pdf

        return render_pdf
    return None


def _render_error(media_type: MediaType, exc: pyvips.Error) -> CorruptMediaError:
    first_line = (exc.detail or exc.message).strip().splitlines()[0]
    return CorruptMediaError(f"cannot render {media_type.format.upper()}: {first_line[:200]}")


def _with_placeholders(result: RenderResult, output: OutputSpec) -> RenderResult:
    """The row's placeholders (PLACEHOLDERS) and perceptual hash, from the thumbnails."""
    facts = placeholder_metadata(result.thumbnails, output.placeholders)
    return replace(result, metadata={**result.metadata, **facts})
