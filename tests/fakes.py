"""In-process stand-ins for the ports, for unit tests of the processor's and poller's logic only.

Every real adapter is tested against real servers in tests/contract and tests/integration;
these fakes exist so a unit test can force one branch of the status machine (a storage outage,
a lost claim) deterministically.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from media_worker.engines.port import (
    OutputSpec,
    RenderedThumbnail,
    RenderResult,
    SourceMedia,
)
from media_worker.errors import ObjectTooLargeError, OriginalNotFoundError
from media_worker.queue.port import QueueDepth, ReceivedMessage
from media_worker.repository.port import Claim, NewMedia
from media_worker.storage.reader import ObjectReader
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData, ThumbnailSize


@dataclass
class FakeQueue:
    """Records what the processor did to each message."""

    has_dead_letter: bool = True
    sent: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)
    visibility: dict[str, int] = field(default_factory=dict)
    fail_with: Exception | None = None
    inbox: list[ReceivedMessage] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=itertools.count)

    def send(self, body: str, delay_seconds: int = 0) -> str:
        message_id = f"m{next(self._ids)}"
        self.sent.append(body)
        self.inbox.append(ReceivedMessage(message_id, f"r-{message_id}", body, 1))
        return message_id

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        batch, self.inbox = self.inbox[:max_messages], self.inbox[max_messages:]
        return batch

    def delete(self, message: ReceivedMessage) -> None:
        self._maybe_fail()
        self.deleted.append(message.message_id)

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        self._maybe_fail()
        self.visibility[message.message_id] = timeout_seconds

    def dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        self._maybe_fail()
        self.dead_lettered.append((message.message_id, reason))

    def depth(self) -> QueueDepth:
        return QueueDepth(visible=len(self.inbox), in_flight=0)

    def close(self) -> None:
        pass

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


@dataclass
class FakeStorage:
    """A dict of objects; `fail_with` makes every call raise."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    fail_with: Exception | None = None

    def ensure_bucket(self, bucket: str) -> None:
        pass

    def size(self, bucket: str, key: str) -> int:
        return len(self._get(bucket, key))

    def download(self, bucket: str, key: str, destination: Path, *,
                 max_bytes: int | None = None) -> int:
        data = self._get(bucket, key)
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLargeError(len(data), max_bytes)
        destination.write_bytes(data)
        return len(data)

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        return ObjectReader(BytesRangeSource(self._get(bucket, key)), name=key,
                            max_read_bytes=max_read_bytes)

    def upload(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.objects[(bucket, key)] = data

    def upload_file(self, bucket: str, key: str, source: Path, content_type: str) -> None:
        self.upload(bucket, key, source.read_bytes(), content_type)

    def read(self, bucket: str, key: str) -> bytes:
        return self._get(bucket, key)

    def check_bucket(self, bucket: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def close(self) -> None:
        pass

    def _get(self, bucket: str, key: str) -> bytes:
        if self.fail_with is not None:
            raise self.fail_with
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise OriginalNotFoundError(f"{bucket}/{key} not found") from None


@dataclass
class BytesRangeSource:
    """A RangeSource over bytes in memory that records every fetch as (start, length)."""

    data: bytes
    etag: str = '"fake-etag"'
    fetches: list[tuple[int, int]] = field(default_factory=list)
    bytes_received: int = 0
    closed: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def fetch(self, start: int, length: int) -> bytes:
        self.fetches.append((start, length))
        chunk = self.data[start:start + length]
        self.bytes_received += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeLeadership:
    released: bool = False

    def held(self) -> bool:
        return not self.released

    def release(self) -> None:
        self.released = True


@dataclass
class FakeRepository:
    """The status machine's statements over a dict, fenced like the real adapters."""

    rows: dict[str, MediaRecord] = field(default_factory=dict)
    fail_with: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    leader_elsewhere: bool = False  # another replica holds the sweep's lock

    def migrate(self) -> None:
        pass

    def verify_schema(self) -> list[str]:
        return []

    def try_lead(self, name: str) -> FakeLeadership | None:
        if self.leader_elsewhere:
            return None
        return FakeLeadership()

    def insert(self, media: NewMedia) -> MediaRecord:
        record = MediaRecord(id=media.id, bucket=media.bucket, key=media.key,
                             mime_type=media.mime_type, size=media.size)
        self.rows[media.id] = record
        return record

    def get(self, media_id: str) -> MediaRecord | None:
        self._maybe_fail()
        return self.rows.get(media_id)

    def claim(self, media_id: str, lease_seconds: int, job_id: str | None = None
              ) -> Claim | None:
        self._maybe_fail()
        with self.lock:
            row = self.rows.get(media_id)
            now = datetime.now(UTC)
            if row is None or not (row.status is MediaStatus.PENDING or (
                row.status is MediaStatus.PROCESSING and row.lease_until
                and row.lease_until < now
            )):
                return None
            row = self._update(media_id, status=MediaStatus.PROCESSING,
                               attempts=row.attempts + 1,
                               lease_until=now + timedelta(seconds=lease_seconds))
            return Claim(media_id, row.attempts, row, job_id)

    def extend_lease(self, claim: Claim, lease_seconds: int) -> bool:
        return self._fenced(claim, lease_until=datetime.now(UTC) + timedelta(seconds=lease_seconds))

    def complete(self, claim: Claim, thumbnails: list[ThumbnailData],
                 metadata: dict[str, Any]) -> bool:
        return self._fenced(claim, status=MediaStatus.READY, thumbnails=thumbnails,
                            metadata=metadata, error=None, lease_until=None)

    def fail(self, claim: Claim, error: str) -> bool:
        return self._fenced(claim, status=MediaStatus.FAILED, error=error, lease_until=None)

    def release(self, claim: Claim, error: str) -> bool:
        return self._fenced(claim, status=MediaStatus.PENDING, error=error, lease_until=None)

    def count_by_status(self) -> dict[MediaStatus, int]:
        return {s: sum(r.status is s for r in self.rows.values()) for s in MediaStatus}

    def list(self, status: MediaStatus | None = None, limit: int = 50,
             **_window: datetime | None) -> list[MediaRecord]:
        return [r for r in self.rows.values() if status is None or r.status is status][:limit]

    def oldest_created_at(self, status: MediaStatus) -> datetime | None:
        return None

    def requeue(self, media_id: str) -> bool:
        row = self.rows.get(media_id)
        if row is None or row.status is not MediaStatus.FAILED:
            return False
        self._update(media_id, status=MediaStatus.PENDING, attempts=0, error=None)
        return True

    def close(self) -> None:
        pass

    def _fenced(self, claim: Claim, **changes: Any) -> bool:
        self._maybe_fail()
        with self.lock:
            row = self.rows.get(claim.media_id)
            if row is None or row.status is not MediaStatus.PROCESSING or (
                row.attempts != claim.attempt
            ):
                return False
            self._update(claim.media_id, **changes)
            return True

    def _update(self, media_id: str, **changes: Any) -> MediaRecord:
        row = self.rows[media_id].model_copy(update=changes)
        self.rows[media_id] = row
        return row

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


@dataclass
class FakeEngine:
    """Renders fixed-size fake thumbnails, or raises `fail_with`."""

    fail_with: Exception | None = None
    calls: int = 0
    sources: list[SourceMedia] = field(default_factory=list)

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        self.calls += 1
        self.sources.append(source)
        if self.fail_with is not None:
            raise self.fail_with
        assert source.path.is_file()
        thumbs = [RenderedThumbnail(size=s, width=s.width, height=s.height // 2,
                                    format=output.format.value,
                                    mime_type=f"image/{output.format.value}",
                                    data=f"{s.name}".encode()) for s in sizes]
        return RenderResult(thumbs, {"kind": "image", "width": 4000, "height": 2000})

    def close(self) -> None:
        pass


def new_row(repository: FakeRepository, storage: FakeStorage, data: bytes = b"x" * 100, *,
            media_id: str | None = None) -> str:
    """Insert a PENDING row whose original exists; returns its id."""
    media_id = media_id or str(uuid.uuid4())
    storage.objects[("media", f"uploads/{media_id}")] = data
    repository.insert(NewMedia(id=media_id, bucket="media", key=f"uploads/{media_id}"))
    return media_id


