"""What the worker needs from the media table: the status machine's statements, nothing more.

Each transition is one conditional statement, so two workers can never both win a claim and a
worker whose claim was taken over (its lease expired) cannot overwrite the newer claim's result:
`complete`, `fail`, `release` and `extend_lease` only match the row as the claim left it
(status PROCESSING and the same `attempts`). Every adapter passes
tests/contract/test_repository_contract.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from media_worker.events.outbox import OutboxStore
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData


@dataclass(frozen=True)
class NewMedia:
    """What the API (or `media-worker enqueue`) inserts."""

    id: str
    bucket: str
    key: str
    mime_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Claim:
    """Proof that this worker holds a row: the fencing token is (`media_id`, `attempt`).
    `job_id` is the message's, carried into the status events of this claim."""

    media_id: str
    attempt: int
    record: MediaRecord
    job_id: str | None = None


@dataclass(frozen=True)
class SimilarMedia:
    """One READY row near a hash (PerceptualIndex.similar): `distance` bits of 64 differ."""

    id: str
    distance: int
    key: str
    width: int | None = None
    height: int | None = None


class Leadership(Protocol):
    """A lock one process holds across every replica until it lets go or dies."""

    def held(self) -> bool:
        """Whether the lock is still ours (False once its connection or file is gone)."""
        ...

    def release(self) -> None:
        """Let go (idempotent)."""
        ...


class PerceptualIndex(Protocol):
    """The perceptual hashes of one media table, for `media-worker similar` and `duplicates`
    (similarity.py; docs/media.md, "Perceptual hashes"). Methods raise
    RepositoryUnavailableError when the database is down; every adapter passes
    tests/contract/test_phash_contract.py."""

    def similar(self, bits: int, max_distance: int, *, exclude: str | None = None,
                limit: int = 100) -> list[SimilarMedia]:
        """READY rows whose hash is within `max_distance` of `bits` (unsigned), nearest first
        (then by id), without `exclude`."""
        ...

    def count(self) -> int:
        """How many READY rows have a hash (what `batches` walks)."""
        ...

    def batches(self, size: int) -> Iterator[list[tuple[str, int]]]:
        """(id, unsigned hash) of every READY row with a hash, `size` at a time, by id."""
        ...


class MediaRepository(Protocol):
    """What a job needs from the `Media` table: the status machine's statements. Methods raise
    RepositoryUnavailableError when the database is down."""

    def verify_schema(self) -> list[str]:
        """Raise SchemaMissingError naming the table when it does not exist (start-up).

        Returns warnings to log: what still works but wants a migration (a table without the
        "phash" column, whose rows become READY without it, or without its quarters "phash0"
        to "phash3", which `similar` then searches by computing every distance)."""
        ...

    def get(self, media_id: str) -> MediaRecord | None:
        """The row, or None when there is none."""
        ...

    def claim(self, media_id: str, lease_seconds: int, job_id: str | None = None
              ) -> Claim | None:
        """PENDING (or PROCESSING with an expired lease) → PROCESSING, attempts + 1.

        Returns None when the row is missing, finished, or held under a live lease. Every
        status change (claim, complete, fail, release, requeue) also records its status event
        in the same transaction, as the repository's EventRecording says (docs/events.md)."""
        ...

    def extend_lease(self, claim: Claim, lease_seconds: int) -> bool:
        """Push the lease of a held row forward; False when the claim was lost."""
        ...

    def complete(
        self, claim: Claim, thumbnails: list[ThumbnailData], metadata: dict[str, Any]
    ) -> bool:
        """PROCESSING → READY with thumbnails and metadata (and the "phash" column and its
        quarters from metadata.phash, NULL without one, where the table has them); False when
        the claim was lost."""
        ...

    def fail(self, claim: Claim, error: str) -> bool:
        """PROCESSING → FAILED with a readable error; False when the claim was lost."""
        ...

    def release(self, claim: Claim, error: str) -> bool:
        """PROCESSING → PENDING after a transient failure; False when the claim was lost."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MediaAdmin(Protocol):
    """What operators and the background companions (reconciler, queue gauge) need from the
    table: creating it, inserting as the API would, counting, listing, re-queueing, and the
    cross-replica lock of the sweep."""

    def migrate(self) -> None:
        """Create the schema if it does not exist (idempotent)."""
        ...

    def try_lead(self, name: str) -> Leadership | None:
        """Take the cross-replica lock `name`, or None while another process holds it."""
        ...

    def insert(self, media: NewMedia) -> MediaRecord:
        """Insert a PENDING row."""
        ...

    def count_by_status(self) -> dict[MediaStatus, int]:
        """Number of rows per status (every status present, zero included)."""
        ...

    def list(
        self,
        status: MediaStatus | None = None,
        limit: int = 50,
        *,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> list[MediaRecord]:
        """Rows, most recently updated first, optionally of one status and updated in a window."""
        ...

    def oldest_created_at(self, status: MediaStatus) -> datetime | None:
        """When the oldest row of `status` was created (queue-age metric), or None."""
        ...

    def requeue(self, media_id: str) -> bool:
        """FAILED → PENDING with attempts reset, for an operator's retry; False if not FAILED."""
        ...

    def perceptual_index(self) -> PerceptualIndex:
        """Near-duplicate search over the READY rows' perceptual hashes (same database)."""
        ...

    def outbox(self) -> OutboxStore:
        """The dispatchers' side of the status events' outbox table (same database)."""
        ...


class MediaStore(MediaRepository, MediaAdmin, Protocol):
    """Both sides, as every adapter provides them."""
