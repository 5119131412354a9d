"""How a job reaches its original: its first bytes through the reader, then either a whole
download or nothing at all.

Every job first reads the object's head (HEAD_BYTES, one small ranged request) to learn what
it is and how large. A still is then downloaded whole, bounded by MAX_INPUT_BYTES: decoding a
JPEG needs every byte of it anyway. A video is not downloaded when the engine reads it in place
(the local engine's decoder process opens its own reader and fetches the container's index and
the packets around the frames it uses, at most MAX_READ_BYTES), so its size costs neither
transfer nor disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_worker.engines.sniff import HEAD_BYTES, MediaKind, MediaType, sniff_bytes
from media_worker.errors import UnsupportedMediaError
from media_worker.storage.port import ObjectStorage

BYTES_READ = "bytesRead"  # the row's metadata: what reading in place fetched of the original


@dataclass(frozen=True)
class Head:
    """The original as its first bytes tell it: `size` in bytes, what reading them cost
    (`fetched`), and its type (None: no type the worker knows; the engine says why)."""

    size: int
    fetched: int
    media_type: MediaType | None

    @property
    def is_video(self) -> bool:
        return self.media_type is not None and self.media_type.kind is MediaKind.VIDEO


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
