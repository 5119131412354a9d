"""Misbehaving engines for the isolation tests; a module of their own so that spawned child
processes can import them by name."""

from __future__ import annotations

import os
import signal
import time

from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.errors import UnsupportedMediaError
from media_worker.types import ThumbnailSize


class BehaviourEngine:
    """Does what the source file's content says: 'crash', 'hang', 'unsupported', 'bug' (an
    exception no decoder code translated, as a library binding raises on a fuzzed file) or
    renders."""

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        command = source.path.read_text()
        if command == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if command == "hang":
            time.sleep(3600)
        if command == "unsupported":
            raise UnsupportedMediaError("unsupported media type: test")
        if command == "bug":
            codec_context = None
            return codec_context.width  # type: ignore[attr-defined, no-any-return]
        thumbs = [RenderedThumbnail(s, 1, 1, "png", "image/png", str(os.getpid()).encode())
                  for s in sizes]
        return RenderResult(thumbs, {"pid": os.getpid()})

    def close(self) -> None:
        pass
