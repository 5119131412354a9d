"""Stores whose readers misbehave, for the reading-in-place tests; a module of their own so
that spawned decoder processes can build them by name (a factory of the engine's)."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from media_worker.app.adapters import ORIGINAL_READ_AHEAD_FIRST
from media_worker.engines.port import SourceMedia
from media_worker.errors import OriginalChangedError
from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.read_ahead import ReadAhead
from media_worker.storage.reader import ObjectReader

BUCKET = "media"
MIB = 1024 * 1024

# What the worker's S3 readers fetch (app/adapters.py): the tests count bytes as S3 would.
S3_LIKE = ReadAhead(first=ORIGINAL_READ_AHEAD_FIRST)


@dataclass
class MemorySource:
    """A RangeSource over the bytes of a file: `announced` bytes long (more than it holds:
    truncated), replaced by another version after `changes_after` fetches."""

    data: bytes
    announced: int
    changes_after: int | None = None
    etag: str = '"v1"'
    bytes_received: int = 0
    fetches: int = field(default=0, init=False)
    threads: list[str] = field(default_factory=list, init=False)  # the fetching thread's name

    @property
    def size(self) -> int:
        return self.announced

    def fetch(self, start: int, length: int) -> bytes:
        self.fetches += 1
        self.threads.append(threading.current_thread().name)
        if self.changes_after is not None and self.fetches > self.changes_after:
            raise OriginalChangedError("the original changed while it was read: test")
        chunk = self.data[start:start + length]
        self.bytes_received += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class S3LikeStorage(FilesystemStorage):
    """A directory whose readers fetch as the worker's S3 readers do (read-ahead windows and
    their cache), and can be told to lie: `truncated_by` bytes missing from every object, a
    new version after `changes_after` fetches."""

    def __init__(self, root: Path, *, truncated_by: int = 0,
                 changes_after: int | None = None) -> None:
        super().__init__(root, fsync=False)
        self._truncated_by = truncated_by
        self._changes_after = changes_after
        self.sources: list[MemorySource] = []  # of every reader opened, in order

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        data = self.read(bucket, key)
        source = MemorySource(data[:len(data) - self._truncated_by], len(data),
                              self._changes_after)
        self.sources.append(source)
        return ObjectReader(source, name=key, max_read_bytes=max_read_bytes,
                            read_ahead=S3_LIKE)


def stored(root: Path, *files: Path) -> Path:
    """`files` as objects `media/<name>` of a directory store rooted at `root` (hard links:
    the session's temporary directory is one filesystem; copies where it is not)."""
    (root / BUCKET).mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, root / BUCKET / path.name)
        except OSError:
            shutil.copy(path, root / BUCKET / path.name)
    return root


def in_place(name: str, max_read_bytes: int = 256 * MIB) -> SourceMedia:
    """The object `media/<name>`, left in storage for the engine to read in place."""
    return SourceMedia(None, BUCKET, name, max_read_bytes=max_read_bytes)
