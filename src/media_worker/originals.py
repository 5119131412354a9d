"""How a job reaches its original: its first bytes through the reader, then either a whole
download or nothing at all.

Every job first reads the object's head (HEAD_BYTES, one small ranged request) to learn what
it is and how large. What happens next depends on what decoding it needs:

- A still is downloaded whole, bounded by MAX_INPUT_BYTES: decoding a JPEG, a PNG or a WebP
  needs every byte of it anyway, and a HEIC's primary picture is most of its file
  (docs/media.md, "Big originals", says why HEIC and AVIF are not read in place).
- A video or a PDF is not downloaded when the engine reads in place (the local engine: its
  decoder process opens its own reader). FFmpeg fetches the container's index and the packets
  around the frames it uses; PDFium the document's structure and its first page's objects. At
  most MAX_READ_BYTES is fetched, so the original's size costs neither transfer nor disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from media_worker.engines.port import SourceMedia
from media_worker.engines.sniff import HEAD_BYTES, MediaKind, MediaType, sniff_bytes
from media_worker.errors import (
    ConfigurationError,
    OriginalChangedError,
    UnsupportedMediaError,
)

if TYPE_CHECKING:  # the local engine imports this module in its decoder processes: keep light
    from pathlib import Path

    from media_worker.engines.port import RenderResult
    from media_worker.jobs import InFlightJob
    from media_worker.observability.logging import Logger
    from media_worker.observability.metrics import WorkerMetrics
    from media_worker.renditions import Focus
    from media_worker.storage.port import ObjectStorage
    from media_worker.storage.reader import ObjectReader
    from media_worker.types import MediaRecord

BYTES_READ = "bytesRead"  # the row's metadata: what reading in place fetched of the original
# What an engine that reads in place reads so: the kinds whose decoders need a part of the file.
IN_PLACE_KINDS = frozenset({MediaKind.VIDEO, MediaKind.DOCUMENT})


def read_in_place(media_type: MediaType | None) -> bool:
    """Whether an original of this type is read in place (by an engine that can) rather than
    downloaded: a video or a PDF. An unknown type is downloaded, for the engine to explain."""
    return media_type is not None and media_type.kind in IN_PLACE_KINDS


@contextmanager
def opened_in_place(storage: ObjectStorage | None, source: SourceMedia
                    ) -> Iterator[tuple[ObjectReader, MediaType]]:
    """A reader of an original the processor left in storage, at its start, and its type
    sniffed again from it: the object may have been replaced since the head was read, by one
    the engine must not read in place."""
    if storage is None:
        raise ConfigurationError("this engine has no storage to read originals in place")
    with storage.open_reader(source.bucket, source.key,
                             max_read_bytes=source.max_read_bytes) as reader:
        media_type = sniff_bytes(reader.read(HEAD_BYTES))
        reader.seek(0)
        if not read_in_place(media_type):
            raise OriginalChangedError(
                f"the original {source.bucket}/{source.key} changed: it is no longer a "
                f"video or a PDF (now {media_type.format.upper()})")
        yield reader, media_type


@dataclass(frozen=True)
class Head:
    """The original as its first bytes tell it: `size` in bytes, what reading them cost
    (`fetched`), and its type (None: no type the worker knows; the engine says why)."""

    size: int
    fetched: int
    media_type: MediaType | None


def read_head(storage: ObjectStorage, bucket: str, key: str) -> Head:
    """The object's size and type, from at most HEAD_BYTES of it."""
    with storage.open_reader(bucket, key, max_read_bytes=HEAD_BYTES) as reader:
        data = reader.read(HEAD_BYTES)
        size, fetched = reader.size, reader.bytes_fetched
    try:
        media_type: MediaType | None = sniff_bytes(data)
    except UnsupportedMediaError:  # downloaded, so the engine's sniff words the error
        media_type = None
    return Head(size, fetched, media_type)


@dataclass(frozen=True)
class Original:
    """What the engine is given for a job (`source`: a local copy, or the stored object to
    read in place), the original's size in bytes, and its head."""

    source: SourceMedia
    size: int
    head: Head


@dataclass(frozen=True)
class Originals:
    """Reaches each job's original: reads its head (the `read` stage), then downloads it (the
    `download` stage) unless the engine reads it in place (`in_place`: the engine can)."""

    storage: ObjectStorage
    metrics: WorkerMetrics
    max_input_bytes: int
    max_read_bytes: int
    in_place: bool

    def reach(self, job: InFlightJob, record: MediaRecord, focus: Focus | None,
              scratch: Path, log: Logger) -> Original:
        """The original of `record`, downloaded into `scratch` when it must be."""
        with job.timed("read") as stage:
            head = read_head(self.storage, record.bucket, record.key)
            self.metrics.add_input_bytes(head.fetched)
            stage.note(bytes=head.fetched)
        source = SourceMedia(None, record.bucket, record.key, focus,
                             max_read_bytes=self.max_read_bytes)
        if self.in_place and read_in_place(head.media_type):
            return Original(source, head.size, head)
        destination = scratch / "original"
        with job.timed("download") as stage:
            written = self.storage.download(record.bucket, record.key, destination,
                                            max_bytes=self.max_input_bytes)
            self.metrics.add_input_bytes(written)
            log.debug("downloaded", stage="download", bytes=written)
            stage.note(bytes=written)
        return Original(replace(source, path=destination), written, head)

    def counted(self, original: Original, result: RenderResult) -> RenderResult:
        """What the engine fetched reading `original` in place, in the metric and the row's
        metadata (the head included); a downloaded original was counted as it came."""
        if not original.source.in_place:
            return result
        fetched = int(result.metadata.get(BYTES_READ, 0))
        self.metrics.add_input_bytes(fetched)
        return replace(result, metadata={**result.metadata,
                                         BYTES_READ: fetched + original.head.fetched})
