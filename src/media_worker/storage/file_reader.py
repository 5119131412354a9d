"""Reads of one local file version: the RangeSource behind FilesystemStorage.open_reader.

The file is read where it lies, with `pread`, and nothing is cached here: the kernel's page
cache and read-ahead already do that for a local file, so the ObjectReader over it fetches
exactly what a decoder asks for. Bytes read still count against MAX_READ_BYTES, so a job
behaves alike on the embedded default and on S3.

A changed object fails as on S3 (OriginalChangedError, transient). The open descriptor would
keep reading the old version after the adapter renames a new file over the key, so "changed"
is judged from the path and the descriptor before every read: the key now names another file
(replaced or deleted), or the open file's size or modification time moved (written in place,
which only something other than the worker does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from media_worker.errors import OriginalChangedError, TruncatedOriginalError

_CHANGED = "the original changed while it was read"


@dataclass
class FileRangeSource:
    """Ranges of the open file `stream` (whose key is the file at `path`)."""

    stream: BinaryIO
    path: Path
    where: str
    translated: Callable[[], AbstractContextManager[None]]
    size: int = field(init=False)
    etag: str = field(init=False)
    bytes_received: int = 0
    _identity: tuple[int, int] = field(init=False, repr=False)
    _version: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        with self.translated():
            opened = os.fstat(self.stream.fileno())
        self._identity = (opened.st_dev, opened.st_ino)
        self._version = (opened.st_size, opened.st_mtime_ns)
        self.size = opened.st_size
        # What an ETag says on S3 (this version of the object), from what the disk keeps.
        self.etag = f"{opened.st_ino:x}-{opened.st_size:x}-{opened.st_mtime_ns:x}"

    def fetch(self, start: int, length: int) -> bytes:
        with self.translated():
            self._check_unchanged()
            data = self._pread(start, length)
        if len(data) < length:
            raise TruncatedOriginalError(
                f"the original {self.where!r} is truncated: {self.size} bytes announced, "
                f"{start + len(data)} found")
        return data

    def close(self) -> None:
        self.stream.close()

    def _check_unchanged(self) -> None:
        now = os.fstat(self.stream.fileno())
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            raise OriginalChangedError(f"{_CHANGED}: {self.where!r} was deleted") from None
        if (named.st_dev, named.st_ino) != self._identity:
            raise OriginalChangedError(f"{_CHANGED}: {self.where!r} was replaced")
        if (now.st_size, now.st_mtime_ns) != self._version:
            raise OriginalChangedError(f"{_CHANGED}: {self.where!r} was written in place "
                                       f"(now {now.st_size} bytes, was {self.size})")

    def _pread(self, start: int, length: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < length:
            chunk = os.pread(self.stream.fileno(), length - got, start + got)
            if not chunk:
                break
            self.bytes_received += len(chunk)
            got += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks)
