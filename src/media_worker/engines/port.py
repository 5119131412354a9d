"""What the worker needs from a thumbnail engine: one original in, every size out.

An engine receives the whole list of sizes at once so it can decode the original a single time
and derive each size from the previous, larger one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from media_worker.config import ThumbnailFormat
from media_worker.engines.render_clock import RenderTiming
from media_worker.renditions import Focus, PreviewSpec, StoryboardSpec
from media_worker.types import Crop, ThumbnailSize


@dataclass(frozen=True)
class OutputSpec:
    """How thumbnails are encoded."""

    format: ThumbnailFormat = ThumbnailFormat.WEBP
    quality: int = 80
    background: tuple[int, int, int] = (255, 255, 255)  # behind alpha, for formats without it
    tonemap: str = "bt2390"  # TONEMAP: the curve that brings PQ/HLG originals to SDR
    hdr_output: str = "sdr"  # HDR_OUTPUT: `gainmap` writes JPEG sizes of HDR originals as Ultra HDR
    color: str = "srgb"  # THUMBNAIL_COLOR: `keep-p3` keeps Display P3 originals in P3
    resize_light: str = "gamma"  # RESIZE_LIGHT: `linear` downscales in linear light
    gps: bool = False  # METADATA_GPS=keep: the row's metadata keeps the original's position
    # Beyond the sizes: a video's preview clip and storyboard (None: off), and the limits that
    # cut an animation (animated sizes, clips) rather than fail it.
    preview: PreviewSpec | None = None
    storyboard: StoryboardSpec | None = None
    max_animation_frames: int = 300
    max_animation_pixels: int = 50_000_000
    # MOTION_PHOTO_PREVIEW=on: the clip of a motion photo's embedded video (None: off).
    motion_preview: PreviewSpec | None = None
    # PLACEHOLDERS: which of blurhash, thumbhash, colors the row gets (the pHash always).
    placeholders: frozenset[str] = frozenset({"blurhash", "thumbhash", "colors"})


DEFAULT_MAX_READ_BYTES = 256 * 1024 * 1024  # MAX_READ_BYTES' default


@dataclass(frozen=True)
class SourceMedia:
    """The original: a local copy (`path`; None when it was not downloaded and the engine
    reads it in place, through its own storage, fetching at most `max_read_bytes`), where it
    lives in object storage, and the point its job wants `cover` crops centred on."""

    path: Path | None
    bucket: str
    key: str
    focus: Focus | None = None
    max_read_bytes: int = DEFAULT_MAX_READ_BYTES

    @property
    def in_place(self) -> bool:
        """Whether the engine reads the stored object rather than a local copy."""
        return self.path is None


@dataclass(frozen=True)
class RenderedThumbnail:
    """One encoded rendition, ready to upload. `kind` is image, animation, preview,
    storyboard or storyboard-vtt; `size.name` names its key (`preview`, `storyboard-0`, …).
    `crop` is the window of a `cover`/`smart` size in upright source pixels (None for `fit`);
    `frames` and `duration_ms` are set for animations and clips."""

    size: ThumbnailSize
    width: int
    height: int
    format: str
    mime_type: str
    data: bytes
    kind: str = "image"
    crop: Crop | None = None
    frames: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class RenderResult:
    """Every size, plus what was learned about the original (width, height, kind, …) and
    how long its decode and each encode took (render_clock.py)."""

    thumbnails: list[RenderedThumbnail]
    metadata: dict[str, Any] = field(default_factory=dict)
    timings: tuple[RenderTiming, ...] = ()


class ThumbnailEngine(Protocol):
    """Renders thumbnails. Raises PermanentError subclasses for bad media (unsupported, corrupt,
    over a limit) and TransientError subclasses when it could not do the work right now."""

    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        """Render every size, one thumbnail per size in the order given; each fits its box,
        keeps its aspect ratio and is never upscaled."""
        ...

    def close(self) -> None:
        """Release resources (process pools, HTTP sessions)."""
        ...
