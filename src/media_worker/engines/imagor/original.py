"""What the worker learns of the original before asking the service, where it learns it, and
what it renders itself.

A light local probe (sniffed type, then the header only: libvips or Pillow for images, the
container and first frame for video, both read through `engines/probe.py` exactly as the local
engine reads them). It enforces MAX_PIXELS and MAX_VIDEO_SECONDS before the service is
bothered, refuses audio-only files as the local engine does, gives the row its metadata
(`motionPhoto` included) and tells what size each answer may have. A header the local decoders
cannot read does not fail the job: the service has the last word.

A still is probed from its downloaded copy. A video is not downloaded (the processor leaves it
in storage when the engine reads in place): the probe opens a reader of the stored object, as
the local engine's decoder does, and FFmpeg reads the container's index and the first frame's
packets through it, at most MAX_READ_BYTES; `bytesRead` says what that fetched. The reader's
refusals (more than MAX_READ_BYTES, a truncated or a changed original) are the job's error,
not a header FFmpeg could not read.

The row's placeholders and perceptual hash (`placeholder`, `thumbhash`, the colours, `phash`)
are read from the service's thumbnails as the local engine reads them from its own
(`engines/placeholders/of_thumbnails.py`), in the same processes: the worker decodes no more of
an answer in its own process than the check that it is a thumbnail.

Camera RAW files and PDFs are not sent to the service at all. Thumbor's Pillow reads neither.
imagor and imagorvideo are built without a RAW loader: their libvips takes a DNG for the TIFF
it is built on and shows its first directory (often a small preview, or undemosaiced sensor
data). Where built with poppler they draw a PDF by their own rules, with no page count and no
reason for a password-protected one. The local engine's own RAW and PDF paths (`engines/raw.py`,
`engines/pdf.py`: upright by the RAW's orientation, the preview or a half-size demosaic; the
first page at the scale the largest size needs, on white) render them in the same decoder
processes, under the same limits, and the row says so (`renderedBy: "local"`).

The probe and those renders feed untrusted bytes to libvips, Pillow, FFmpeg, LibRaw and PDFium
like any render, so `IsolatedProbe` runs them in the killable decoder processes of
`engines/isolation.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from media_worker.engines.isolation import DecoderPool
from media_worker.engines.motion_photo import with_motion_photo
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.engines.probe import (
    NoDecoderError,
    check_pixels,
    configure_libvips,
    first_frame_transform,
    image_metadata,
    read_image_header,
    video_metadata,
)
from media_worker.engines.raw_sniff import RAW_FORMATS
from media_worker.engines.sniff import MediaKind, MediaType, sniff
from media_worker.engines.video_source import VideoSource, opened_video
from media_worker.errors import (
    CorruptMediaError,
    UnsupportedMediaError,
)
from media_worker.originals import BYTES_READ, opened_in_place
from media_worker.types import ThumbnailSize

if TYPE_CHECKING:
    from media_worker.engines.decode_budget import DecodeBudget
    from media_worker.engines.local import LocalEngine
    from media_worker.storage.port import ObjectStorage

# Formats whose header size is the picture a service renders. Not SVG (rasterised at the
# service's density), HEIC/AVIF (crop and rotation boxes libraries honour differently), JXL.
EXACT_SIZE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "bmp", "ico"})
RENDERED_BY = "renderedBy"  # the row's metadata: which engine made the thumbnails
# Without a limit (an engine built without one, as in tests), the local paths take these.
_NO_PIXEL_LIMIT = 1 << 62
_NO_SECONDS_LIMIT = float("inf")

StorageFactory = Callable[[], "ObjectStorage"]


def renders_locally(media_type: MediaType) -> bool:
    """Whether the worker renders this type itself rather than ask the service: a camera RAW
    or a PDF (see the module docstring)."""
    return media_type.format in RAW_FORMATS or media_type.kind is MediaKind.DOCUMENT


@dataclass(frozen=True)
class Probe:
    """The original as the worker sees it. `candidates` are the (width, height) pictures a
    service may legitimately thumbnail: upright for images; for video also the coded size
    turned upright but without the pixel-aspect stretch, which imagorvideo does not apply."""

    media_type: MediaType
    metadata: dict[str, Any]
    candidates: tuple[tuple[int, int], ...] = ()
    duration: float | None = None


class Prober(Protocol):
    def probe(self, source: SourceMedia) -> Probe: ...

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult: ...

    def facts(self, thumbnails: list[RenderedThumbnail],
              kinds: frozenset[str]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalProbe:
    """Probes (and renders what the service cannot) in the calling process. `storage` builds
    the storage adapter videos are read in place through (None: only local copies)."""

    def __init__(self, *, max_pixels: int | None = None,
                 max_video_seconds: float | None = None,
                 max_header_pixels: int | None = None,
                 budget: DecodeBudget | None = None,
                 storage: StorageFactory | None = None) -> None:
        self._max_pixels = max_pixels
        self._max_video_seconds = max_video_seconds
        self._max_header_pixels = max_header_pixels
        self._budget = budget
        self._storage = storage() if storage is not None else None
        self._local: LocalEngine | None = None  # built on the first RAW or PDF
        configure_libvips()

    def probe(self, source: SourceMedia) -> Probe:
        if source.path is None:
            return self._probe_in_place(source)
        return probe_original(source.path, max_pixels=self._max_pixels,
                              max_video_seconds=self._max_video_seconds)

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        """Thumbnails by the local engine's own paths (a RAW, a PDF)."""
        return self._local_engine().render(source, sizes, output)

    def facts(self, thumbnails: list[RenderedThumbnail],
              kinds: frozenset[str]) -> dict[str, Any]:
        """The placeholders PLACEHOLDERS asks for (`kinds`) and the pHash, from the service's
        thumbnails, as the local engine reads them from its own."""
        from media_worker.engines.placeholders.of_thumbnails import placeholder_metadata

        return placeholder_metadata(thumbnails, kinds)

    def close(self) -> None:
        """Close the storage adapter originals are read in place with."""
        if self._local is not None:
            self._local.close()  # it closes the storage it was given
        elif self._storage is not None:
            self._storage.close()

    def _probe_in_place(self, source: SourceMedia) -> Probe:
        """A video probed through a reader of the stored object; a PDF (the other kind the
        processor leaves in storage) only sniffed, for `render` to read."""
        with opened_in_place(self._storage, source) as (reader, media_type):
            if media_type.kind is MediaKind.VIDEO:
                probe = probe_video(reader, media_type, max_pixels=self._max_pixels,
                                    max_video_seconds=self._max_video_seconds)
            else:
                probe = Probe(media_type, {})
            fetched = reader.bytes_fetched
        return replace(probe, metadata={**probe.metadata, BYTES_READ: fetched})

    def _local_engine(self) -> LocalEngine:
        if self._local is None:
            # Imported on the first RAW or PDF: the image path's modules (and LibRaw, PDFium
            # on their first file) stay out of a probe process that never sees one.
            from media_worker.engines.local import LocalEngine

            extra = ({} if self._max_header_pixels is None
                     else {"max_header_pixels": self._max_header_pixels})
            self._local = LocalEngine(
                max_pixels=self._max_pixels if self._max_pixels is not None else _NO_PIXEL_LIMIT,
                max_video_seconds=(self._max_video_seconds if self._max_video_seconds is not None
                                   else _NO_SECONDS_LIMIT),
                budget=self._budget, storage=self._storage, **extra)
        return self._local


class IsolatedProbe:
    """Probes and renders in killable child processes: a decoder that crashes or hangs costs
    one job (a permanent failure), never the worker. A probe is stopped after
    `timeout_seconds` (with the requests), a render after `render_timeout_seconds`
    (JOB_TIMEOUT_SECONDS, as a local render)."""

    def __init__(self, *, processes: int, timeout_seconds: float,
                 render_timeout_seconds: float | None = None,
                 max_pixels: int | None = None, max_video_seconds: float | None = None,
                 max_header_pixels: int | None = None, budget: DecodeBudget | None = None,
                 storage: StorageFactory | None = None) -> None:
        factory = partial(LocalProbe, max_pixels=max_pixels,
                          max_video_seconds=max_video_seconds,
                          max_header_pixels=max_header_pixels, budget=budget, storage=storage)
        self._render_timeout = render_timeout_seconds or timeout_seconds
        self._pool = DecoderPool(factory, workers=processes, timeout_seconds=timeout_seconds)

    def probe(self, source: SourceMedia) -> Probe:
        result: Probe = self._pool.call("probe", source.path, source,
                                        doing="probing the original")
        return result

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        result: RenderResult = self._pool.call("render", source.path, source, sizes, output,
                                               doing="rendering",
                                               timeout_seconds=self._render_timeout)
        return result

    def facts(self, thumbnails: list[RenderedThumbnail],
              kinds: frozenset[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._pool.call("facts", None, thumbnails, kinds,
                                                 doing="reading the thumbnails' colours")
        return result

    def close(self) -> None:
        self._pool.close()


def probe_original(path: Path, *, max_pixels: int | None = None,
                   max_video_seconds: float | None = None) -> Probe:
    """Type, size and duration of the original from its header (and, for video, its first
    frame's display matrix). Raises for audio-only files and exceeded limits only."""
    media_type = sniff(path)
    if media_type.kind is MediaKind.AUDIO:
        raise UnsupportedMediaError(
            f"unsupported media: no video stream ({media_type.format} audio-only file)")
    if renders_locally(media_type):
        return Probe(media_type, _base(media_type))  # the local render reads the rest
    if media_type.kind is MediaKind.VIDEO:
        return probe_video(path, media_type, max_pixels=max_pixels,
                           max_video_seconds=max_video_seconds)
    return _probe_image(path, media_type, max_pixels)


def _base(media_type: MediaType) -> dict[str, Any]:
    return {"kind": media_type.kind.value, "format": media_type.format,
            "mimeType": media_type.mime_type}


def _probe_image(path: Path, media_type: MediaType, max_pixels: int | None) -> Probe:
    try:
        header = read_image_header(path, media_type)
    except CorruptMediaError:
        return Probe(media_type, _base(media_type))
    if media_type.format != "svg":  # a vector is rasterised at thumbnail size, not its own
        check_pixels(header.width, header.height, max_pixels)
    metadata = _with_motion(path, media_type, image_metadata(media_type, header), max_pixels)
    if media_type.format not in EXACT_SIZE_FORMATS:
        return Probe(media_type, metadata)  # only the box and the fallback pixel are checked
    return Probe(media_type, metadata, candidates=(header.upright,))


def _with_motion(path: Path, media_type: MediaType, metadata: dict[str, Any],
                 max_pixels: int | None) -> dict[str, Any]:
    """`motionPhoto` as the local engine finds it (the service shows the still only)."""
    found = with_motion_photo(path, media_type, RenderResult([], metadata), OutputSpec(),
                              max_pixels=max_pixels if max_pixels is not None
                              else _NO_PIXEL_LIMIT)
    return found.metadata


def probe_video(source: VideoSource, media_type: MediaType, *, max_pixels: int | None = None,
                max_video_seconds: float | None = None) -> Probe:
    """A video's facts from its container and first frame: `source` is a local copy or a
    reader of the stored original, whose own failures are the job's error."""
    import av  # on the first video only, as the local engine

    try:
        with opened_video(source, media_type, max_pixels=max_pixels,
                          max_seconds=max_video_seconds) as (container, stream, facts):
            transform = first_frame_transform(container, stream)
    except (av.FFmpegError, NoDecoderError):
        return Probe(media_type, _base(media_type))  # this FFmpeg cannot; the service's may
    display, coded = facts.display_size, (facts.width, facts.height)
    if transform.swaps_sides:
        display, coded = display[::-1], coded[::-1]
    metadata = video_metadata(media_type, facts, width=display[0], height=display[1],
                              transform=transform)
    # imagorvideo turns by its own reading of the display matrix and ignores the pixel aspect:
    # any of these pictures is a faithful frame; a wrong aspect or a 1x1 pixel is not.
    candidates = tuple(dict.fromkeys((display, coded, display[::-1], coded[::-1])))
    return Probe(media_type, metadata, candidates, facts.duration)
