"""What the worker learns of the original before asking the service, and where it learns it.

A light local probe of the file it has already downloaded (sniffed type, then the header only:
libvips or Pillow for images, the container and first frame for video, both read through
`engines/probe.py` exactly as the local engine reads them). It enforces MAX_PIXELS and
MAX_VIDEO_SECONDS before the service is bothered, refuses audio-only files as the local engine
does, gives the row its metadata and tells what size each answer may have. A header the local
decoders cannot read does not fail the job: the service has the last word.

The probe feeds untrusted bytes to libvips, Pillow and FFmpeg like any render, so
`IsolatedProbe` runs it in the killable decoder processes of `engines/isolation.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from media_worker.engines.isolation import DecoderPool
from media_worker.engines.probe import (
    NoDecoderError,
    check_pixels,
    check_video_limits,
    configure_libvips,
    first_frame_transform,
    image_metadata,
    read_image_header,
    video_facts,
    video_metadata,
    video_stream,
)
from media_worker.engines.sniff import MediaKind, MediaType, sniff
from media_worker.errors import CorruptMediaError, UnsupportedMediaError

# Formats whose header size is the picture a service renders. Not SVG (rasterised at the
# service's density), HEIC/AVIF (crop and rotation boxes libraries honour differently), JXL.
EXACT_SIZE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "bmp", "ico"})


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
    def probe(self, path: Path) -> Probe: ...

    def close(self) -> None: ...


class LocalProbe:
    """Probes in the calling process."""

    def __init__(self, *, max_pixels: int | None = None,
                 max_video_seconds: float | None = None) -> None:
        self._max_pixels = max_pixels
        self._max_video_seconds = max_video_seconds
        configure_libvips()

    def probe(self, path: Path) -> Probe:
        return probe_original(path, max_pixels=self._max_pixels,
                              max_video_seconds=self._max_video_seconds)

    def close(self) -> None:
        """Nothing to release."""


class IsolatedProbe:
    """Probes in killable child processes: a decoder that crashes or hangs on the header costs
    one job (a permanent failure), never the worker."""

    def __init__(self, *, processes: int, timeout_seconds: float, max_pixels: int | None = None,
                 max_video_seconds: float | None = None) -> None:
        factory = partial(LocalProbe, max_pixels=max_pixels,
                          max_video_seconds=max_video_seconds)
        self._pool = DecoderPool(factory, workers=processes, timeout_seconds=timeout_seconds)

    def probe(self, path: Path) -> Probe:
        result: Probe = self._pool.call("probe", path, path, doing="probing the original")
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
    base = {"kind": media_type.kind.value, "format": media_type.format,
            "mimeType": media_type.mime_type}
    if media_type.kind is MediaKind.VIDEO:
        return _probe_video(path, media_type, base, max_pixels, max_video_seconds)
    return _probe_image(path, media_type, base, max_pixels)


def _probe_image(path: Path, media_type: MediaType, base: dict[str, Any],
                 max_pixels: int | None) -> Probe:
    try:
        header = read_image_header(path, media_type)
    except CorruptMediaError:
        return Probe(media_type, base)
    if media_type.format != "svg":  # a vector is rasterised at thumbnail size, not its own
        check_pixels(header.width, header.height, max_pixels)
    metadata = image_metadata(media_type, header)
    if media_type.format not in EXACT_SIZE_FORMATS:
        return Probe(media_type, metadata)  # only the box and the fallback pixel are checked
    return Probe(media_type, metadata, candidates=(header.upright,))


def _probe_video(path: Path, media_type: MediaType, base: dict[str, Any],
                 max_pixels: int | None, max_video_seconds: float | None) -> Probe:
    import av  # on the first video only, as the local engine

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = video_stream(container, media_type, path)
            facts = video_facts(container, stream)
            check_video_limits(facts, max_pixels, max_video_seconds)
            transform = first_frame_transform(container, stream)
    except (av.FFmpegError, NoDecoderError):
        return Probe(media_type, base)  # this FFmpeg cannot read it; the service's may
    display, coded = facts.display_size, (facts.width, facts.height)
    if transform.swaps_sides:
        display, coded = display[::-1], coded[::-1]
    metadata = video_metadata(media_type, facts, width=display[0], height=display[1],
                              transform=transform)
    # imagorvideo turns by its own reading of the display matrix and ignores the pixel aspect:
    # any of these pictures is a faithful frame; a wrong aspect or a 1x1 pixel is not.
    candidates = tuple(dict.fromkeys((display, coded, display[::-1], coded[::-1])))
    return Probe(media_type, metadata, candidates, facts.duration)
