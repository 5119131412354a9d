"""MediaProcessor: the status machine of one job, and nothing else.

    claim the row (PENDING → PROCESSING) → reach the original (read its head; download it
    unless the engine reads it in place: originals.py) → render → upload → finish (→ READY)
    → delete the message

On a permanent failure the row becomes FAILED and the message is deleted. On a transient one
the row goes back to PENDING and the message is hidden for a backoff delay, until the attempts
are spent. The processor only knows the ports; which adapters stand behind them is app.py's
business; what a delivery reports besides its outcome (its span, its metrics) is
observation.py's, and the message of a row it could not claim unclaimed.py's.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from media_worker.engines.port import (
    DEFAULT_MAX_READ_BYTES,
    OutputSpec,
    RenderResult,
    SourceMedia,
    ThumbnailEngine,
)
from media_worker.errors import MediaWorkerError, PermanentError, TransientError
from media_worker.jobs import InFlightJob, PoisonMessageError, parse_message
from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics
from media_worker.observability.tracing import NO_TRACER, Tracer
from media_worker.observation import observed
from media_worker.originals import Originals
from media_worker.outcomes import Outcome
from media_worker.queue.port import MessageQueue
from media_worker.renditions import parse_focus, recorded_request, rendition_request, sizes_for
from media_worker.repository.port import Claim, MediaRepository
from media_worker.settlement import Settlement
from media_worker.storage.port import ObjectStorage
from media_worker.types import ThumbnailData, ThumbnailSize
from media_worker.unclaimed import Unclaimed
from media_worker.uploads import upload_renditions


@dataclass(frozen=True)
class ProcessorSettings:
    """The parts of Settings the processor acts on."""

    sizes: list[ThumbnailSize]
    output: OutputSpec
    thumbnail_bucket: str
    profiles: dict[str, list[ThumbnailSize]] = field(default_factory=dict)
    key_template: str = "thumbnails/{media_id}/{size}.{ext}"
    max_attempts: int = 5
    max_input_bytes: int = 512 * 1024 * 1024
    max_read_bytes: int = DEFAULT_MAX_READ_BYTES
    # The engine reads videos and PDFs in place (the local engine: its decoder processes open
    # their own reader), so they are not downloaded (originals.py).
    read_in_place: bool = False
    lease_seconds: int = 300
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 900.0
    missing_row_grace_seconds: float = 120.0
    work_dir: Path | None = None


class ClaimLostError(Exception):
    """Our claim on the row was taken over by another worker while we worked."""


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
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._engine = engine
        self._queue = queue
        self._settings = settings
        self._log = logger
        self._metrics = metrics or WorkerMetrics()
        self._tracer = tracer
        self._settle = Settlement(queue, retry_base_seconds=settings.retry_base_seconds,
                                  retry_max_seconds=settings.retry_max_seconds)
        self._originals = Originals(storage, self._metrics,
                                    max_input_bytes=settings.max_input_bytes,
                                    max_read_bytes=settings.max_read_bytes,
                                    in_place=settings.read_in_place)
        self._unclaimed = Unclaimed(repository, self._settle, settings.lease_seconds,
                                    settings.missing_row_grace_seconds)

    def handle(self, job: InFlightJob) -> Outcome:
        """Run one delivery through the status machine, observed; never raises."""
        return observed(job, partial(self._handle_any, job), tracer=self._tracer,
                        metrics=self._metrics)

    def _handle_any(self, job: InFlightJob) -> Outcome:
        try:
            return self._handle(job)
        except Exception as exc:  # an unmapped library error or a bug: this job only
            return self._unexpected(job, exc)

    def _handle(self, job: InFlightJob) -> Outcome:
        message = job.message
        log = self._log.bind(messageId=message.message_id, receiveCount=message.receive_count)
        try:
            request = parse_message(message.body)
        except PoisonMessageError as exc:
            job.trace.failed(str(exc))
            self._settle.dead_letter(job, str(exc), log)
            return Outcome.POISON
        log = log.bind(mediaId=request.media_id, jobId=request.job_id)
        job.request = request
        try:
            with job.timed("claim"):
                claim = self._repository.claim(request.media_id, self._settings.lease_seconds,
                                               job_id=request.job_id)
        except TransientError as exc:
            log.warning("claim failed, will retry", error=short_error(exc))
            self._settle.back_off(job, log)
            return Outcome.DEFERRED
        if claim is None:
            return self._unclaimed.settled(request.media_id, job, log)
        job.claim = claim
        return self._process(job, claim, log.bind(attempt=claim.attempt))

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
        request = job.request
        # A job the settings cannot frame fails before its original is fetched.
        profile, raw_focus = rendition_request(request.profile if request else None,
                                               request.focus if request else None,
                                               record.metadata)
        sizes = sizes_for(profile, self._settings.profiles, self._settings.sizes)
        focus = parse_focus(raw_focus)
        with self._scratch_dir() as scratch:
            original = self._originals.reach(job, record, focus, scratch, log)
            with job.timed("render") as stage:
                result = self._render(original.source, sizes)
                stage.rendered(result)
            result = self._originals.counted(original, result)
            job.kind = str(result.metadata.get("kind") or "unknown")
            log.debug("rendered", stage="render", kind=job.kind,
                      seconds=round(job.stages["render"], 3))
        # A worker paused past its lease (a "zombie") must not overwrite what the newer claim
        # stored: renewing the lease is fenced, so it fails once the claim was taken over.
        if not self._repository.extend_lease(claim, self._settings.lease_seconds):
            raise ClaimLostError(claim.media_id)
        with job.timed("upload") as stage:
            thumbnails = self._upload(record.id, result, log)
            stage.note(bytes=sum(thumb.bytes for thumb in thumbnails))
        return thumbnails, {**result.metadata, "bytes": original.size,
                            **recorded_request(profile, focus)}

    def _render(self, source: SourceMedia, sizes: list[ThumbnailSize]) -> RenderResult:
        try:
            return self._engine.render(source, sizes, self._settings.output)
        except MediaWorkerError as exc:
            self._metrics.engine_error(exc)
            raise

    def _upload(self, media_id: str, result: RenderResult, log: Logger) -> list[ThumbnailData]:
        stored = upload_renditions(self._storage, self._metrics,
                                   bucket=self._settings.thumbnail_bucket,
                                   key_template=self._settings.key_template,
                                   media_id=media_id, result=result)
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
        self._settle.delete(job, log)
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
        job.trace.failed(error)
        claim = job.claim
        if claim is not None and claim.attempt >= self._settings.max_attempts:
            try:  # bounded like every transient failure: FAILED once the attempts are spent
                return self._fail(claim, job, f"gave up after {claim.attempt} attempts: {error}",
                                  log, gave_up=True)
            except Exception as fail_exc:
                log.warning("could not record the failure; the lease will expire",
                            error=short_error(fail_exc))
        if job.claim is not None:
            try:
                self._repository.release(job.claim, error)
            except Exception as release_exc:
                log.warning("could not release the row; its lease will expire",
                            error=short_error(release_exc))
        try:
            self._settle.back_off(job, log)
        except Exception as hide_exc:
            log.warning("could not delay the message; it returns after its visibility "
                        "timeout", error=short_error(hide_exc))
        return Outcome.RETRY

    def _fail(self, claim: Claim, job: InFlightJob, error: str, log: Logger, *,
              gave_up: bool = False) -> Outcome:
        log.warning("failed permanently", error=error)
        job.trace.failed(error)
        try:
            failed = self._repository.fail(claim, error)
        except TransientError as exc:
            log.warning("could not record the failure; the lease will expire and it will be "
                        "retried", error=short_error(exc))
            self._settle.back_off(job, log)
            return Outcome.RETRY
        if not failed:
            log.warning("claim lost before recording the failure")
            return Outcome.LOST
        self._settle.delete(job, log)
        return Outcome.GAVE_UP if gave_up else Outcome.FAILED

    def _retry(self, claim: Claim, job: InFlightJob, error: str, log: Logger) -> Outcome:
        if claim.attempt >= self._settings.max_attempts:
            return self._fail(claim, job, f"gave up after {claim.attempt} attempts: {error}",
                              log, gave_up=True)
        log.warning("transient failure, will retry", error=error)
        job.trace.failed(error)
        try:
            released = self._repository.release(claim, error)
        except TransientError as exc:
            log.warning("could not release the row; its lease will expire",
                        error=short_error(exc))
            released = True
        if released:
            self._settle.back_off(job, log)
            return Outcome.RETRY
        return Outcome.LOST

    @contextmanager
    def _scratch_dir(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="media-worker-", dir=self._settings.work_dir) as d:
            yield Path(d)


def _with_type(log: Logger, exc: BaseException) -> Logger:
    """Failure lines carry the exception's type next to its short message."""
    return log.bind(errorType=type(exc).__name__)
