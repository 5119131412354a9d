"""MediaProcessor: the status machine of one job, and nothing else.

    claim the row (PENDING → PROCESSING) → download → render → upload → finish (→ READY)
    → delete the message

On a permanent failure the row becomes FAILED and the message is deleted. On a transient one
the row goes back to PENDING and the message is hidden for a backoff delay, until the attempts
are spent. The processor only knows the ports; which adapters stand behind them is app.py's
business.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia, ThumbnailEngine
from media_worker.errors import (
    MediaWorkerError,
    PermanentError,
    QueueUnavailableError,
    TransientError,
)
from media_worker.jobs import InFlightJob, PoisonMessageError, parse_message
from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import Claim, MediaRepository
from media_worker.storage.port import ObjectStorage
from media_worker.types import MediaRecord, MediaStatus, ThumbnailData, ThumbnailSize


class Outcome(StrEnum):
    """What became of one delivery."""

    READY = "ready"  # thumbnails stored, row READY, message deleted
    FAILED = "failed"  # permanent failure: row FAILED, message deleted
    GAVE_UP = "gave_up"  # transient failures until MAX_ATTEMPTS: row FAILED, message deleted
    RETRY = "retry"  # transient failure: row PENDING (when reachable), message kept
    DEFERRED = "deferred"  # the database was unreachable before a claim: message kept
    SKIPPED = "skipped"  # missing row past its grace, or already finished: message deleted
    AWAITING_ROW = "awaiting_row"  # no row yet, within MISSING_ROW_GRACE_SECONDS: message kept
    HELD = "held"  # another worker holds a live lease: message hidden until it can end
    LOST = "lost"  # our claim was taken over while we worked: nothing written
    POISON = "poison"  # unusable message: dead-lettered or deleted


# The `outcome` label of media_worker_jobs_total for each outcome.
METRIC_OUTCOMES = {
    Outcome.READY: "ready", Outcome.FAILED: "failed_permanent",
    Outcome.GAVE_UP: "failed_transient", Outcome.RETRY: "retry", Outcome.DEFERRED: "retry",
    Outcome.SKIPPED: "skipped", Outcome.AWAITING_ROW: "awaiting_row", Outcome.HELD: "held",
    Outcome.LOST: "lost",
    Outcome.POISON: "poison",
}


@dataclass(frozen=True)
class ProcessorSettings:
    """The parts of Settings the processor acts on."""

    sizes: list[ThumbnailSize]
    output: OutputSpec
    thumbnail_bucket: str
    key_template: str = "thumbnails/{media_id}/{size}.{ext}"
    max_attempts: int = 5
    max_input_bytes: int = 512 * 1024 * 1024
    lease_seconds: int = 300
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 900.0
    missing_row_grace_seconds: float = 120.0
    work_dir: Path | None = None


class ClaimLostError(Exception):
    """Our claim on the row was taken over by another worker while we worked."""


def retry_delay(receive_count: int, base: float, cap: float) -> int:
    """Visibility delay before a failed job comes back: exponential in the receive count,
    with full jitter so a burst of failures does not return as a burst.

    This computes a delay handed to the queue, not a retry loop (those use tenacity and
    boto3's retry modes), so it is three lines rather than a library call."""
    ceiling = min(cap, base * 2 ** max(receive_count - 1, 0))
    return max(1, round(random.uniform(ceiling / 2, ceiling)))


MISSING_ROW_MAX_DELAY_SECONDS = 30


def missing_row_delay(receive_count: int) -> int:
    """2, 4, 8, 16, 30, 30 … seconds: a row committed a moment late is found within seconds,
    and a 120 s grace costs about eight receives, below a redrive policy's usual ten."""
    return min(MISSING_ROW_MAX_DELAY_SECONDS, 2 ** max(receive_count, 1))


class MediaProcessor:
    """Handles one delivered message from receipt to its final queue operation."""

    def __init__(
        self,
        *,
        repository: MediaRepository,
        storage: ObjectStorage,
        engine: ThumbnailEngine,
        queue: MessageQueue,
        settings: ProcessorSettings,
        logger: Logger,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._engine = engine
        self._queue = queue
        self._settings = settings
        self._log = logger
        self._metrics = metrics or WorkerMetrics()

    def handle(self, job: InFlightJob) -> Outcome:
        """Run one delivery through the status machine; never raises."""
        started = time.monotonic()
        # Received ahead (WORKER_PREFETCH), a message may wait for a free slot; its latency
        # (`seconds`) counts from the receive, and this stage says how much of it was waiting.
        job.stages["queued"] = started - job.started
        job.handling_since = started
        with self._metrics.tracking_in_flight():
            try:
                outcome = self._handle(job)
            except Exception as exc:  # an unmapped library error or a bug: this job only
                outcome = self._unexpected(job, exc)
        self._record(job, outcome, time.monotonic() - started)
        return outcome

    def _handle(self, job: InFlightJob) -> Outcome:
        message = job.message
        log = self._log.bind(messageId=message.message_id, receiveCount=message.receive_count)
        try:
            request = parse_message(message.body)
        except PoisonMessageError as exc:
            return self._poison(job, str(exc), log)
        log = log.bind(mediaId=request.media_id, jobId=request.job_id)
        try:
            with job.timed("claim"):
                claim = self._repository.claim(request.media_id, self._settings.lease_seconds)
        except TransientError as exc:
            log.warning("claim failed, will retry", error=short_error(exc))
            self._hide(job, log)
            return Outcome.DEFERRED
        if claim is None:
            return self._not_claimed(request.media_id, job, log)
        job.claim = claim
        return self._process(job, claim, log.bind(attempt=claim.attempt))

    def _record(self, job: InFlightJob, outcome: Outcome, seconds: float) -> None:
        self._metrics.job_finished(METRIC_OUTCOMES[outcome], job.kind, seconds)
        for stage, stage_seconds in job.stages.items():
            self._metrics.stage_finished(stage, job.kind, stage_seconds)
        if outcome in (Outcome.RETRY, Outcome.DEFERRED):
            self._metrics.retry()

    # --- the happy path ---------------------------------------------------------------------
    def _process(self, job: InFlightJob, claim: Claim, log: Logger) -> Outcome:
        try:
            thumbnails, metadata = self._render_and_store(job, claim, log)
        except ClaimLostError:
            log.warning("claim lost while rendering; another worker owns the row now; "
                        "nothing uploaded")
            return Outcome.LOST
        except PermanentError as exc:
            return self._fail(claim, job, short_error(exc), _with_type(log, exc))
        except TransientError as exc:
            return self._retry(claim, job, short_error(exc), _with_type(log, exc))
        except Exception as exc:  # a bug or an unmapped library error: bounded by attempts
            log = _with_type(log, exc)
            log.exception("unexpected error")
            return self._retry(claim, job, f"internal error: {short_error(exc)}", log)
        with job.timed("finish"):
            return self._finish(job, claim, thumbnails=thumbnails, metadata=metadata, log=log)

    def _render_and_store(
        self, job: InFlightJob, claim: Claim, log: Logger
    ) -> tuple[list[ThumbnailData], dict[str, Any]]:
        record = claim.record
        with self._scratch_dir() as scratch:
            original = scratch / "original"
            with job.timed("download"):
                size = self._download(record, original, log)
            with job.timed("render"):
                result = self._render(SourceMedia(original, record.bucket, record.key))
            job.kind = str(result.metadata.get("kind") or "unknown")
            log.debug("rendered", stage="render", kind=job.kind,
                      seconds=round(job.stages["render"], 3))
        # A worker paused past its lease (a "zombie") must not overwrite what the newer claim
        # stored: renewing the lease is fenced, so it fails once the claim was taken over.
        if not self._repository.extend_lease(claim, self._settings.lease_seconds):
            raise ClaimLostError(claim.media_id)
        with job.timed("upload"):
            thumbnails = self._upload(record.id, result, log)
        return thumbnails, {**result.metadata, "bytes": size}

    def _render(self, source: SourceMedia) -> RenderResult:
        try:
            return self._engine.render(source, self._settings.sizes, self._settings.output)
        except MediaWorkerError as exc:
            self._metrics.engine_error(exc)
            raise

    def _download(self, record: MediaRecord, destination: Path, log: Logger) -> int:
        written = self._storage.download(record.bucket, record.key, destination,
                                         max_bytes=self._settings.max_input_bytes)
        self._metrics.add_input_bytes(written)
        log.debug("downloaded", stage="download", bytes=written)
        return written

    def _upload(self, media_id: str, result: RenderResult, log: Logger) -> list[ThumbnailData]:
        bucket = self._settings.thumbnail_bucket
        stored = []
        for thumb in result.thumbnails:
            key = self._settings.key_template.format(
                media_id=media_id, size=thumb.size.name, ext=_extension(thumb.format)
            )
            self._storage.upload(bucket, key, thumb.data, thumb.mime_type)
            self._metrics.thumbnail_stored(thumb.size.name)
            self._metrics.add_output_bytes(len(thumb.data))
            stored.append(ThumbnailData(
                size=thumb.size.name, width=thumb.width, height=thumb.height,
                format=thumb.format, mime_type=thumb.mime_type, bucket=bucket, key=key,
                bytes=len(thumb.data),
            ))
        log.debug("uploaded", stage="upload", count=len(stored))
        return stored

    def _finish(
        self,
        job: InFlightJob,
        claim: Claim,
        *,
        thumbnails: list[ThumbnailData],
        metadata: dict[str, Any],
        log: Logger,
    ) -> Outcome:
        try:
            completed = self._repository.complete(claim, thumbnails, metadata)
        except TransientError as exc:
            return self._retry(claim, job, short_error(exc), log)
        if not completed:
            log.warning("claim lost before finishing; another worker owns the row now")
            return Outcome.LOST
        self._delete(job, log)
        log.info("ready", stage="finish", kind=job.kind, thumbnails=len(thumbnails),
                 seconds=round(time.monotonic() - job.started, 3),
                 stages={stage: round(seconds, 3) for stage, seconds in job.stages.items()})
        return Outcome.READY

    # --- the other branches ---------------------------------------------------------------
    def _unexpected(self, job: InFlightJob, exc: Exception) -> Outcome:
        """What no branch expected becomes a transient failure of this one job: logged with
        its traceback, the row released when we hold it, the message back after a backoff."""
        log = _with_type(self._log.bind(messageId=job.message.message_id), exc)
        log.exception("unexpected error; the job will be retried")
        error = f"internal error: {short_error(exc)}"
        if job.claim is not None:
            try:
                self._repository.release(job.claim, error)
            except Exception as release_exc:
                log.warning("could not release the row; its lease will expire",
                            error=short_error(release_exc))
        try:
            self._hide(job, log)
        except Exception as hide_exc:
            log.warning("could not delay the message; it returns after its visibility "
                        "timeout", error=short_error(hide_exc))
        return Outcome.RETRY

    def _poison(self, job: InFlightJob, reason: str, log: Logger) -> Outcome:
        message = job.message
        where = "dead-letter queue" if self._queue.has_dead_letter else "nowhere (deleted)"
        log.error("poison message", reason=reason, movedTo=where)
        try:
            with job.settling():
                self._queue.dead_letter(message, reason)
        except QueueUnavailableError as exc:
            log.warning("could not move poison message; it will come back", error=short_error(exc))
        return Outcome.POISON

    def _not_claimed(self, media_id: str, job: InFlightJob, log: Logger) -> Outcome:
        try:
            record = self._repository.get(media_id)
        except TransientError as exc:
            log.warning("lookup failed, will retry", error=short_error(exc))
            self._hide(job, log)
            return Outcome.DEFERRED
        if record is None:
            return self._await_row(job, log)
        if record.status in (MediaStatus.READY, MediaStatus.FAILED):
            log.info("already finished; dropping the duplicate message", status=record.status)
        else:
            delay = self._until_lease_ends(record)
            log.info("held by another worker's live lease; looking again when it can end",
                     status=record.status, retryInSeconds=delay)
            self._delay(job, delay, log)
            return Outcome.HELD
        self._delete(job, log)
        return Outcome.SKIPPED

    def _until_lease_ends(self, record: MediaRecord) -> int:
        """Seconds until a live lease can have ended (a second past it): a duplicate comes
        back then and finds the row finished (deleted) or abandoned (claimed), instead of
        staying hidden for a whole visibility timeout."""
        if record.lease_until is None:
            return 1
        left = (record.lease_until - datetime.now(UTC)).total_seconds()
        return max(1, min(self._settings.lease_seconds, math.ceil(left) + 1))

    def _await_row(self, job: InFlightJob, log: Logger) -> Outcome:
        """An API that sends the job inside its transaction commits the row a moment later:
        look again soon, for MISSING_ROW_GRACE_SECONDS from the message's sending."""
        message = job.message
        age = time.time() - message.sent_at if message.sent_at is not None else None
        if age is not None and age < self._settings.missing_row_grace_seconds:
            delay = missing_row_delay(message.receive_count)
            log.info("no media row yet; looking again soon", retryInSeconds=delay,
                     messageAgeSeconds=round(age, 1))
            self._delay(job, delay, log)
            return Outcome.AWAITING_ROW
        log.warning("no such media row; dropping the message",
                    graceSeconds=self._settings.missing_row_grace_seconds)
        self._delete(job, log)
        return Outcome.SKIPPED

    def _fail(self, claim: Claim, job: InFlightJob, error: str, log: Logger, *,
              gave_up: bool = False) -> Outcome:
        log.warning("failed permanently", error=error)
        try:
            failed = self._repository.fail(claim, error)
        except TransientError as exc:
            log.warning("could not record the failure; the lease will expire and it will be "
                        "retried", error=short_error(exc))
            self._hide(job, log)
            return Outcome.RETRY
        if not failed:
            log.warning("claim lost before recording the failure")
            return Outcome.LOST
        self._delete(job, log)
        return Outcome.GAVE_UP if gave_up else Outcome.FAILED

    def _retry(self, claim: Claim, job: InFlightJob, error: str, log: Logger) -> Outcome:
        if claim.attempt >= self._settings.max_attempts:
            return self._fail(claim, job, f"gave up after {claim.attempt} attempts: {error}",
                              log, gave_up=True)
        log.warning("transient failure, will retry", error=error)
        try:
            released = self._repository.release(claim, error)
        except TransientError as exc:
            log.warning("could not release the row; its lease will expire",
                        error=short_error(exc))
            released = True
        if released:
            self._hide(job, log)
            return Outcome.RETRY
        return Outcome.LOST

    def _hide(self, job: InFlightJob, log: Logger) -> None:
        """Back off before a failed job comes back: exponential in its receive count."""
        self._delay(job, retry_delay(job.message.receive_count, self._settings.retry_base_seconds,
                                     self._settings.retry_max_seconds), log)

    def _delay(self, job: InFlightJob, seconds: int, log: Logger) -> None:
        """Hide the message for `seconds` and note when it is due back (a draining poller
        waits for it)."""
        try:
            with job.settling():
                self._queue.change_visibility(job.message, seconds)
        except QueueUnavailableError as exc:
            log.warning("could not delay the message; it returns after its visibility timeout",
                        error=short_error(exc))
            return
        job.returns_in = seconds

    def _delete(self, job: InFlightJob, log: Logger) -> None:
        try:
            with job.settling():
                self._queue.delete(job.message)
        except QueueUnavailableError as exc:
            # The row is already final: the redelivery finds it finished and deletes then.
            log.warning("could not delete the message; its redelivery will be skipped",
                        error=short_error(exc))

    @contextmanager
    def _scratch_dir(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="media-worker-", dir=self._settings.work_dir) as d:
            yield Path(d)


def _with_type(log: Logger, exc: BaseException) -> Logger:
    """Failure lines carry the exception's type next to its short message."""
    return log.bind(errorType=type(exc).__name__)


def _extension(fmt: str) -> str:
    return {"jpeg": "jpg"}.get(fmt, fmt)
