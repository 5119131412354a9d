"""A store whose reads hang past the first bytes of an object, for the tests that a decoder
process reading an original in place is still stopped at its timeout; a module of its own so
spawned decoder processes can build it by name."""

from __future__ import annotations

import time
from pathlib import Path

from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.reader import ObjectReader
from tests.unit.reading_storages import MemorySource


class StallingSource(MemorySource):
    """Answers the first range (the head) and hangs on every later one: a stuck connection."""

    def fetch(self, start: int, length: int) -> bytes:
        if start > 0:
            time.sleep(3600)
        return super().fetch(start, length)


class StallingStorage(FilesystemStorage):
    """A directory whose readers stall after the head of every object."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        data = self.read(bucket, key)
        return ObjectReader(StallingSource(data, len(data)), name=key,
                            max_read_bytes=max_read_bytes)
