"""What the worker needs from object storage: read an original, write thumbnails.

Originals are downloaded to a local file (not held in memory) so decoders can seek and large
files never sit twice in RAM, or read in place through `open_reader` where a decoder needs only
part of them (a video's index and a few packets). Every adapter passes
tests/contract/test_storage_contract.py and tests/contract/test_object_reader_contract.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from media_worker.storage.reader import ObjectReader


class ObjectStorage(Protocol):
    """Buckets of objects. Raises OriginalNotFoundError for a missing object and
    StorageUnavailableError when the store cannot be reached."""

    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket if it does not exist."""
        ...

    def size(self, bucket: str, key: str) -> int:
        """The object's size in bytes."""
        ...

    def download(self, bucket: str, key: str, destination: Path, *,
                 max_bytes: int | None = None) -> int:
        """Write the object to `destination`; returns the number of bytes written. An object
        longer than `max_bytes` raises ObjectTooLargeError and leaves no file: one request
        both checks the length and fetches the bytes (no HEAD before the GET)."""
        ...

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        """A read-only, seekable binary file over the object as it is now, fetching only what
        is read (what a decoder needs of a large original: its index and a few packets).
        Opening a missing object raises OriginalNotFoundError, as download does. Reading
        raises ReadLimitExceededError (permanent) rather than fetch more than
        `max_read_bytes` in all, OriginalChangedError (transient) once the object is no
        longer the version first read, TruncatedOriginalError (permanent) when the store
        holds fewer bytes than it announced. `bytes_fetched` says what it cost."""
        ...

    def upload(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write (or overwrite) an object."""
        ...

    def upload_file(self, bucket: str, key: str, source: Path, content_type: str) -> None:
        """Write (or overwrite) an object from a local file."""
        ...

    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes (for small objects: thumbnails, tests, tools)."""
        ...

    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists."""
        ...

    def check_bucket(self, bucket: str) -> None:
        """Return when the bucket exists and answers; raise OriginalNotFoundError when it does
        not, StorageUnavailableError when the store is unreachable (readiness)."""
        ...

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
