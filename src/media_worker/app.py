"""The composition root: the only module that knows every adapter.

It turns Settings into concrete adapters (chosen by URL scheme and by which variables are set),
wires them into a MediaProcessor and a QueuePoller, and owns signal handling.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from types import FrameType

from media_worker.aws_access import OpenedSession, ServiceAccess, open_session
from media_worker.config import EngineKind, Settings, SettingsError
from media_worker.engines.port import OutputSpec, ThumbnailEngine
from media_worker.observability.health import HealthServer
from media_worker.observability.logging import Logger
from media_worker.observability.metrics import WorkerMetrics
from media_worker.observability.queue_gauge import SAMPLE_INTERVAL_SECONDS, QueueGauge
from media_worker.poller import PollerSettings, QueuePoller
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.queue.port import MessageQueue
from media_worker.reconcile import Reconciler
from media_worker.repository.port import MediaRepository
from media_worker.storage.port import ObjectStorage
from media_worker.supervision import SupervisedLoop, Supervision


def build_queue(settings: Settings, logger: Logger | None = None) -> MessageQueue:
    """SQS (or any SQS-compatible server) when SQS_QUEUE_URL is set, else the SQLite queue."""
    if settings.sqs_queue_url:
        from media_worker.queue.sqs import SqsQueue

        return SqsQueue(
            settings.sqs_queue_url,
            endpoint_url=settings.sqs_endpoint or None,
            region=settings.aws_region,
            session=_aws_session(settings.queue_access(), logger),
            dlq_url=settings.sqs_dlq_url,
            visibility_timeout=settings.sqs_visibility_timeout,
            max_pool_connections=connection_pool_size(settings),
        )
    from media_worker.queue.sqlite import SqliteQueue

    return SqliteQueue(
        settings.embedded_queue_path,
        visibility_timeout=settings.sqs_visibility_timeout,
        max_receive_count=embedded_max_receive_count(settings),
    )


def embedded_max_receive_count(settings: Settings) -> int:
    """The embedded queue's redrive policy: well past MAX_ATTEMPTS, so the processor decides
    a row's fate and the dead-letter queue only catches messages that loop for other reasons."""
    return settings.max_attempts * 2 + 5


def connection_pool_size(settings: Settings) -> int:
    """HTTP connections per S3/SQS client: one per job thread, plus the poller, heartbeat,
    readiness check, queue gauge and reconciler; never below botocore's usual 10. Too few
    would make threads queue for a connection (and urllib3 drop the surplus ones)."""
    return max(10, settings.worker_concurrency + 5)


def _aws_session(access: ServiceAccess, logger: Logger | None) -> OpenedSession:
    """Credentials for one client; the development-default warning is logged here, once per
    client built (once per start-up)."""
    opened = open_session(access)
    if opened.warning and logger is not None:
        logger.warning(opened.warning)
    return opened


def build_storage(settings: Settings, logger: Logger | None = None) -> ObjectStorage:
    """S3-compatible storage when MINIO_ENDPOINT (or botocore's AWS_ENDPOINT_URL_S3 or
    AWS_ENDPOINT_URL) is set, else a local directory."""
    if settings.storage_endpoint:
        from media_worker.storage.s3 import S3Storage

        return S3Storage(
            endpoint_url=settings.storage_endpoint,
            region=settings.minio_region,
            session=_aws_session(settings.storage_access(), logger),
            max_pool_connections=connection_pool_size(settings),
        )
    from media_worker.storage.filesystem import FilesystemStorage

    return FilesystemStorage(settings.embedded_storage_path)


def build_repository(settings: Settings) -> MediaRepository:
    """PostgreSQL for postgresql:// URLs, SQLite for sqlite:/// URLs."""
    if settings.database_kind == "postgresql":
        from media_worker.repository.postgres import PostgresMediaRepository

        return PostgresMediaRepository(
            settings.database_url.get_secret_value(),
            table=settings.media_table,
            pool_max=settings.worker_concurrency + 2,
        )
    from media_worker.repository.sqlite import SqliteMediaRepository

    return SqliteMediaRepository(settings.sqlite_database_path, table=settings.media_table)


def build_engine(settings: Settings) -> ThumbnailEngine:
    """The in-process engine, or an imagor-protocol service."""
    if settings.thumbnail_engine is EngineKind.IMAGORVIDEO:
        return build_imagor_engine(settings)
    from media_worker.engines.decode_budget import DecodeBudget
    from media_worker.engines.factories import local_engine
    from media_worker.engines.isolation import SPAWN, IsolatedEngine

    budget = (DecodeBudget(settings.decode_memory_mb, SPAWN)
              if settings.decode_memory_mb else None)
    factory = partial(local_engine, max_pixels=settings.max_pixels,
                      max_video_seconds=settings.max_video_seconds, budget=budget)
    return IsolatedEngine(factory, workers=settings.render_workers,
                          timeout_seconds=settings.job_timeout_seconds)


def build_imagor_engine(settings: Settings) -> ThumbnailEngine:
    """An imagorvideo / imagor / Thumbor service over HTTP. With IMAGORVIDEO_SOURCE=presigned
    the service loads a short-lived presigned GET URL, signed locally (signing makes no
    request). Not wrapped in child processes: the work happens in the service."""
    from media_worker.engines.imagor import ImagorEngine
    from media_worker.engines.imagor_url import MIN_TRUNCATE

    secret = settings.imagorvideo_secret
    if secret is None:
        raise SettingsError("invalid setting IMAGORVIDEO_SECRET: required with "
                            "THUMBNAIL_ENGINE=imagorvideo (the worker never sends unsafe URLs)")
    truncate = settings.imagorvideo_signer_truncate
    if 0 < truncate < MIN_TRUNCATE:
        raise SettingsError(f"invalid setting IMAGORVIDEO_SIGNER_TRUNCATE: {truncate} is too "
                            f"short; use 0 (no truncation) or at least {MIN_TRUNCATE}")
    return ImagorEngine(
        base_url=settings.imagorvideo_url,
        secret=secret.get_secret_value(),
        signer_type=settings.imagorvideo_signer_type,
        signer_truncate=truncate,
        source=settings.imagorvideo_source,
        presign=_presigner(settings),
        timeout_seconds=min(60.0, settings.job_timeout_seconds),
        max_pixels=settings.max_pixels,
        max_video_seconds=settings.max_video_seconds,
        pool_size=settings.worker_concurrency,
    )


def _presigner(settings: Settings) -> Callable[[str, str, int], str] | None:
    if settings.imagorvideo_source != "presigned":
        return None
    if settings.uses_embedded_storage:
        raise SettingsError("invalid setting IMAGORVIDEO_SOURCE: 'presigned' needs "
                            "S3-compatible storage (set MINIO_ENDPOINT)")
    from media_worker.storage.s3 import S3Storage

    return S3Storage(
        endpoint_url=settings.storage_endpoint,
        region=settings.minio_region,
        session=_aws_session(settings.storage_access(), None),
    ).presigned_get_url


@dataclass
class Components:
    """The four adapters of one worker process."""

    queue: MessageQueue
    storage: ObjectStorage
    repository: MediaRepository
    engine: ThumbnailEngine


@contextmanager
def open_components(settings: Settings, *, engine: bool = True,
                    logger: Logger | None = None) -> Iterator[Components]:
    """Build every adapter from settings and close them all on exit; `logger` hears the
    start-up warnings (development credentials)."""
    with ExitStack() as stack:
        repository = build_repository(settings)
        stack.callback(repository.close)
        if settings.database_kind == "sqlite":
            repository.migrate()  # the embedded default needs no separate set-up step
        queue = build_queue(settings, logger)
        stack.callback(queue.close)
        storage = build_storage(settings, logger)
        stack.callback(storage.close)
        thumbnail_engine = build_engine(settings) if engine else _NoEngine()
        stack.callback(thumbnail_engine.close)
        yield Components(queue, storage, repository, thumbnail_engine)


class _NoEngine:
    """Stands in for the engine in commands that never render (enqueue, status)."""

    def render(self, *_args: object) -> None:
        raise RuntimeError("this command does not render thumbnails")

    def close(self) -> None:
        pass


def processor_settings(settings: Settings) -> ProcessorSettings:
    return ProcessorSettings(
        sizes=settings.thumbnail_sizes,
        output=OutputSpec(format=settings.thumbnail_format, quality=settings.thumbnail_quality,
                          background=settings.background_rgb),
        thumbnail_bucket=settings.minio_bucket,
        key_template=settings.thumbnail_key_template,
        max_attempts=settings.max_attempts,
        max_input_bytes=settings.max_input_bytes,
        lease_seconds=settings.job_lease_seconds,
        missing_row_grace_seconds=settings.missing_row_grace_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
    )


def poller_settings(settings: Settings, *, drain: bool) -> PollerSettings:
    return PollerSettings(
        concurrency=settings.worker_concurrency,
        prefetch=settings.prefetch_messages,
        max_messages=settings.sqs_max_messages,
        wait_seconds=settings.sqs_wait_time_seconds,
        poll_interval_seconds=settings.sqs_poll_interval_ms / 1000,
        visibility_timeout=settings.sqs_visibility_timeout,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        # The render is killed at JOB_TIMEOUT_SECONDS; downloads and uploads get as long again.
        max_job_seconds=2 * settings.job_timeout_seconds,
        drain=drain,
    )


def build_poller(
    settings: Settings, components: Components, logger: Logger, *, drain: bool,
    metrics: WorkerMetrics | None = None, supervision: Supervision | None = None,
) -> QueuePoller:
    processor = MediaProcessor(
        repository=components.repository,
        storage=components.storage,
        engine=components.engine,
        queue=components.queue,
        settings=processor_settings(settings),
        logger=logger,
        metrics=metrics,
    )
    return QueuePoller(
        queue=components.queue,
        processor=processor,
        repository=components.repository,
        settings=poller_settings(settings, drain=drain),
        logger=logger,
        supervision=supervision,
    )


def run_worker(settings: Settings, components: Components, logger: Logger, *,
               drain: bool) -> QueuePoller:
    """Run the poller until it stops, with its companions: the metrics and health server (when
    METRICS_PORT is set), the queue gauge, and (unless draining) the reconciliation sweep.
    The table is checked first: a worker without one would fail every job."""
    components.repository.verify_schema()
    metrics = WorkerMetrics(size.name for size in settings.thumbnail_sizes)
    supervision = Supervision(logger, metrics)
    poller = build_poller(settings, components, logger, drain=drain, metrics=metrics,
                          supervision=supervision)
    install_signal_handlers(poller)
    with ExitStack() as stack:
        if settings.metrics_port is not None:
            server = HealthServer(settings.metrics_port, metrics,
                                  readiness_checks(settings, components), logger=logger,
                                  liveness=supervision.liveness)
            server.start()
            stack.callback(server.stop)
            gauge = QueueGauge(components.queue, components.repository, metrics)
            _start(stack, supervision.loop("queue-gauge", gauge.step, run_first=True,
                                           interval=SAMPLE_INTERVAL_SECONDS))
        if settings.reconcile_interval_seconds > 0 and not drain:
            reconciler = Reconciler(components.repository, components.queue,
                                    stranded_after_seconds=settings.stranded_after_seconds,
                                    max_queue_depth=settings.reconcile_max_queue_depth,
                                    logger=logger)
            stack.callback(reconciler.close)
            _start(stack, supervision.loop("reconciler", reconciler.step,
                                           interval=settings.reconcile_interval_seconds))
        poller.run()
        if poller.unfinished_jobs:
            _exit_abandoning_jobs(components, logger)
    return poller


def _start(stack: ExitStack, loop: SupervisedLoop) -> None:
    loop.start()
    stack.callback(loop.stop)


def _exit_abandoning_jobs(components: Components, logger: Logger) -> None:
    """Jobs outlived the grace period and were handed back: their threads cannot be stopped
    and would hold the process open (and later act on a handed-back message), so stop the
    decoder processes and leave now, before the adapters close under those threads."""
    logger.info("exiting with abandoned jobs handed back")
    components.engine.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def readiness_checks(settings: Settings, components: Components) -> dict[str, Callable[[], object]]:
    """What /readyz asks: can the worker reach its queue, its storage and its database?"""
    return {
        "queue": components.queue.depth,  # GetQueueAttributes: a missing queue is not ready
        "storage": partial(components.storage.check_bucket, settings.minio_bucket),
        "database": partial(components.repository.get, "readiness-probe"),
    }


def install_signal_handlers(poller: QueuePoller) -> None:
    """First SIGTERM/SIGINT: stop receiving and finish in-flight jobs. Second: exit now.

    The handler never logs: structlog's writer holds a lock that is not reentrant, and a
    signal landing while the main thread writes a line would deadlock on it. It sets the
    poller's stop flag (the loop logs the reason), or on a second signal writes one line
    straight to the stderr descriptor, which takes no lock, and exits."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if poller.stopping:
            os.write(2, f"media-worker: second {name}; exiting immediately\n".encode())
            os._exit(128 + signum)  # in-flight messages reappear after their visibility timeout
        poller.stop(f"{name} received")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
