"""The composition root's first half: adapters built from Settings, chosen by URL scheme and
by which variables are set (never by `if` chains further in), and closed together. This is
the only module that imports the adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

from media_worker.app.events import event_recording
from media_worker.aws_access import OpenedSession, ServiceAccess, open_session
from media_worker.config import EngineKind, Settings, SettingsError
from media_worker.engines.port import ThumbnailEngine
from media_worker.observability.logging import Logger
from media_worker.queue.port import OperatedQueue
from media_worker.repository.port import MediaStore
from media_worker.storage.port import ObjectStorage


def build_queue(settings: Settings, logger: Logger | None = None) -> OperatedQueue:
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


# Threads beside the job threads that call S3/SQS: the poller, the heartbeat, the readiness
# check, the queue gauge and the reconciler.
BACKGROUND_HTTP_USERS = 5
BOTOCORE_DEFAULT_POOL = 10
# Threads beside the job threads that use the database: the heartbeat, the readiness check,
# the queue gauge, the reconciler (whose cross-replica lock has a connection of its own), and
# the status events' dispatchers (one per target, at most three) and outbox upkeep.
BACKGROUND_DATABASE_USERS = 8
# One request renders one size; a service slower than this for one thumbnail is treated as
# unavailable (retried) rather than tying a job thread up for the whole JOB_TIMEOUT_SECONDS.
IMAGOR_REQUEST_TIMEOUT_CAP_SECONDS = 60.0


def connection_pool_size(settings: Settings) -> int:
    """HTTP connections per S3/SQS client: one per job thread plus the background users;
    never below botocore's own default. Too few would make threads queue for a connection
    (and urllib3 drop the surplus ones)."""
    return max(BOTOCORE_DEFAULT_POOL, settings.worker_concurrency + BACKGROUND_HTTP_USERS)


def database_pool_size(settings: Settings) -> int:
    """Database connections: one per job thread plus the background users, so a job never
    waits for a connection the heartbeat holds."""
    return settings.worker_concurrency + BACKGROUND_DATABASE_USERS


def _aws_session(access: ServiceAccess, logger: Logger | None) -> OpenedSession:
    """Credentials for one client; the development-default warning is logged here, once per
    client built (once per start-up)."""
    opened = open_session(access)
    if opened.warning and logger is not None:
        logger.warning(opened.warning)
    return opened


# What a reader of an original fetches on a miss: 8 KiB after a jump, doubling while the
# reads run on. A demuxer jumps a lot: a fragmented MP4 without an index is opened by reading
# the header of each of its fragments (a few hundred bytes), a storyboard reads one keyframe
# per tile. A larger first window costs no fewer requests, only more bytes at each jump: a
# 1 MiB, then a 64 KiB window fetched most of such a file, or more than the 2%
# (docs/performance.md, "Originals read in place"). FFmpeg's own reads are as small
# (video_source.FFMPEG_READ_BYTES).
ORIGINAL_READ_AHEAD_FIRST = 8 * 1024


def build_storage(settings: Settings, logger: Logger | None = None) -> ObjectStorage:
    """S3-compatible storage when MINIO_ENDPOINT (or botocore's AWS_ENDPOINT_URL_S3 or
    AWS_ENDPOINT_URL) is set, else a local directory."""
    if settings.storage_endpoint:
        from media_worker.storage.read_ahead import ReadAhead
        from media_worker.storage.s3 import S3Storage

        return S3Storage(
            endpoint_url=settings.storage_endpoint,
            region=settings.minio_region,
            session=_aws_session(settings.storage_access(), logger),
            max_pool_connections=connection_pool_size(settings),
            read_ahead=ReadAhead(first=ORIGINAL_READ_AHEAD_FIRST),
        )
    from media_worker.storage.filesystem import FilesystemStorage

    return FilesystemStorage(settings.embedded_storage_path)


def build_repository(settings: Settings) -> MediaStore:
    """PostgreSQL for postgresql:// URLs, SQLite for sqlite:/// URLs; each status change also
    records its status event (app/events.py says which)."""
    if settings.database_kind == "postgresql":
        from media_worker.repository.postgres import PostgresMediaRepository

        return PostgresMediaRepository(
            settings.database_url.get_secret_value(),
            table=settings.media_table,
            pool_max=database_pool_size(settings),
            events=event_recording(settings),
        )
    from media_worker.repository.sqlite import SqliteMediaRepository

    return SqliteMediaRepository(settings.sqlite_database_path, table=settings.media_table,
                                 events=event_recording(settings))


def build_engine(settings: Settings) -> ThumbnailEngine:
    """The in-process engine, or an imagor-protocol service."""
    if settings.thumbnail_engine is EngineKind.IMAGORVIDEO:
        return build_imagor_engine(settings)
    from media_worker.engines.decode_budget import DecodeBudget
    from media_worker.engines.factories import local_engine
    from media_worker.engines.isolation import SPAWN, IsolatedEngine

    budget = (DecodeBudget(settings.decode_memory_mb, SPAWN)
              if settings.decode_memory_mb else None)
    # Each decoder process builds its own storage adapter from the settings (a client cannot
    # be pickled) to read videos in place.
    factory = partial(local_engine, max_pixels=settings.max_pixels,
                      max_header_pixels=settings.max_header_pixels,
                      max_video_seconds=settings.max_video_seconds, budget=budget,
                      storage=partial(build_storage, settings))
    return IsolatedEngine(factory, workers=settings.render_workers,
                          timeout_seconds=settings.job_timeout_seconds)


def build_imagor_engine(settings: Settings) -> ThumbnailEngine:
    """An imagorvideo / imagor / Thumbor service over HTTP. With IMAGORVIDEO_SOURCE=presigned
    the service loads a short-lived presigned GET URL, signed locally (signing makes no
    request). The local probe of the original runs in RENDER_PROCESSES decoder processes (the
    same isolation as local renders), each reading videos in place through a storage adapter
    of its own; the rendering happens in the service, except for camera RAW files and PDFs,
    which those processes render as the local engine does (engines/imagor/original.py)."""
    from media_worker.engines.decode_budget import DecodeBudget
    from media_worker.engines.imagor import ImagorEngine
    from media_worker.engines.imagor.url import MIN_TRUNCATE
    from media_worker.engines.isolation import SPAWN

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
        timeout_seconds=min(IMAGOR_REQUEST_TIMEOUT_CAP_SECONDS, settings.job_timeout_seconds),
        max_pixels=settings.max_pixels,
        max_video_seconds=settings.max_video_seconds,
        max_header_pixels=settings.max_header_pixels,
        budget=(DecodeBudget(settings.decode_memory_mb, SPAWN)
                if settings.decode_memory_mb else None),
        probe_processes=settings.render_workers,
        render_timeout_seconds=settings.job_timeout_seconds,
        storage=partial(build_storage, settings),
        service_metadata=settings.imagorvideo_service_metadata,
        pool_size=settings.worker_concurrency,
        retries=settings.imagorvideo_retries,
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

    queue: OperatedQueue
    storage: ObjectStorage
    repository: MediaStore
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


