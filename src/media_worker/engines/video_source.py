"""What FFmpeg opens for a video: a local file by its path, or an original read in place (an
ObjectReader over the stored object) as PyAV's file-object input.

PyAV calls a file object's `read` from inside FFmpeg. An exception raised there is stashed and
raised again at PyAV's next error check, but FFmpeg may first take the failed read for the end
of the file and carry on (a demuxer that stops early, a seek that lands short), and a second
failure replaces the first in the stash. What the reader refused — more than MAX_READ_BYTES,
an original that changed or was truncated — must be the job's error, not "no frame could be
decoded" nor a storyboard cut short. So the first failure is kept here, every read after it
is the end of the file (FFmpeg stops asking, nothing more is fetched), and `failures_first`
raises it in place of whatever the render made of it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from media_worker.engines.fragmented_mp4 import (
    FORMAT_OPTIONS,
    has_fragment_index,
    with_indexed_duration,
)
from media_worker.errors import MediaWorkerError

if TYPE_CHECKING:
    from media_worker.engines.probe import VideoFacts
    from media_worker.engines.sniff import MediaType

VideoSource = Path | BinaryIO  # a local copy, or a seekable reader of the stored original


class FailureKeepingReader(io.RawIOBase):
    """A read-only view of `inner` that remembers the first MediaWorkerError its reads raised
    and reads as ended from then on."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.failure: MediaWorkerError | None = None

    @property
    def name(self) -> str:
        """The object's key: FFmpeg's probing weighs the extension."""
        return str(getattr(self._inner, "name", "original"))

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        position = self._inner.tell()
        try:
            return self._inner.seek(0, io.SEEK_END)
        finally:
            self._inner.seek(position)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.failure is not None:
            return 0
        try:
            return self._inner.readinto(buffer)  # type: ignore[attr-defined,no-any-return]
        except MediaWorkerError as exc:
            self.failure = exc
            raise


# What FFmpeg asks of a file object at a time (PyAV's `buffer_size`; 32 KiB by default, which
# read 32 KiB at every jump however little the demuxer wanted there). The reader's read-ahead
# makes sequential reads large again. A local path is read by FFmpeg itself and ignores it.
FFMPEG_READ_BYTES = 8 * 1024


def for_ffmpeg(source: VideoSource) -> str | FailureKeepingReader:
    """What `av.open` is given for `source`."""
    return str(source) if isinstance(source, Path) else FailureKeepingReader(source)


def open_container(opened: str | FailureKeepingReader) -> Any:
    """The container of what `for_ffmpeg` gave, read in FFMPEG_READ_BYTES pieces; an original
    read in place with a fragmented MP4's index used (fragmented_mp4.py)."""
    import av

    options = dict(FORMAT_OPTIONS) if isinstance(opened, FailureKeepingReader) else {}
    return av.open(opened, metadata_errors="ignore", buffer_size=FFMPEG_READ_BYTES,
                   options=options)


@contextmanager
def opened_video(source: VideoSource, media_type: MediaType, *, max_pixels: int | None,
                 max_seconds: float | None) -> Iterator[tuple[Any, Any, VideoFacts]]:
    """The container of `source`, its video stream and facts, within the limits; inside the
    block, a failure of the reader is the error raised, whatever FFmpeg made of it."""
    from media_worker.engines.probe import check_video_limits, video_facts, video_stream

    opened = for_ffmpeg(source)
    with failures_first(opened), open_container(opened) as container:
        stream = video_stream(container, media_type, source)
        facts = video_facts(container, stream)
        if isinstance(opened, FailureKeepingReader) and has_fragment_index(opened):
            facts = with_indexed_duration(facts, container, stream, opened.size)
        check_video_limits(facts, max_pixels, max_seconds)
        yield container, stream, facts


def named(source: VideoSource) -> Path:
    """A path to name `source` by in messages (a reader by its key)."""
    return source if isinstance(source, Path) else Path(str(getattr(source, "name", "")))


@contextmanager
def failures_first(opened: str | FailureKeepingReader) -> Iterator[None]:
    """Within the block, a failure of the reader is the error raised, whatever else the block
    raised or returned after it."""
    try:
        yield
    except Exception:
        _raise_kept(opened)
        raise
    _raise_kept(opened)


def _raise_kept(opened: str | FailureKeepingReader) -> None:
    if isinstance(opened, FailureKeepingReader) and opened.failure is not None:
        raise opened.failure from None
