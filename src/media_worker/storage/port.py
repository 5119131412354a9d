"""What the worker needs from object storage: read an original, write thumbnails.

Originals are downloaded to a local file (not held in memory) so video decoders can seek and
large files never sit twice in RAM. Every adapter passes tests/contract/test_storage_contract.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


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
