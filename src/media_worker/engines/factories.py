"""Engine constructors that child processes call by name.

The isolated pool pickles a factory and the child imports it. Pointing at this module, rather
than at LocalEngine itself, keeps libvips, FFmpeg and Pillow out of the parent process: only
the decoder children load them (what that saves: docs/performance.md, "Memory").

A child reads videos in place through a storage adapter of its own: a boto3 client cannot be
pickled, so the factory carries a picklable way to build one (`storage`, called once per child
process, when its engine is built)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from media_worker.engines.port import ThumbnailEngine

if TYPE_CHECKING:
    from media_worker.engines.decode_budget import DecodeBudget
    from media_worker.storage.port import ObjectStorage

StorageFactory = Callable[[], "ObjectStorage"]


def local_engine(*, max_pixels: int, max_video_seconds: float,
                 budget: DecodeBudget | None = None,
                 max_header_pixels: int | None = None,
                 storage: StorageFactory | None = None) -> ThumbnailEngine:
    """A LocalEngine, imported here so only the calling process loads the codec libraries.
    `max_header_pixels` None: the engine's default (MAX_HEADER_PIXELS' default); `storage`
    None: no reading in place (only downloaded originals)."""
    from media_worker.engines.local import LocalEngine

    extra = {} if max_header_pixels is None else {"max_header_pixels": max_header_pixels}
    return LocalEngine(max_pixels=max_pixels, max_video_seconds=max_video_seconds,
                       budget=budget, storage=storage() if storage is not None else None,
                       **extra)
