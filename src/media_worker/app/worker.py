"""The composition root's second half: a processor and a poller wired from the adapters, and
the companions of a running worker (health server, queue gauge, reconciliation sweep), each
background loop supervised.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

from media_worker.app.adapters import Components
from media_worker.app.events import delivering_events
from media_worker.app.signals import install_signal_handlers
from media_worker.config import EngineKind, Settings
from media_worker.engines.port import OutputSpec
from media_worker.observability.health import HealthServer
from media_worker.observability.logging import Logger
from media_worker.observability.metrics import WorkerMetrics
from media_worker.observability.queue_gauge import SAMPLE_INTERVAL_SECONDS, QueueGauge
from media_worker.observability.tracing import NO_TRACER, Tracer, build_tracer, traces_endpoint
from media_worker.poller import PollerSettings, QueuePoller
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.reconcile import Reconciler
from media_worker.supervision import SupervisedLoop, Supervision


def processor_settings(settings: Settings) -> ProcessorSettings:
    return ProcessorSettings(
        sizes=settings.thumbnail_sizes,
        output=OutputSpec(format=settings.thumbnail_format, quality=settings.thumbnail_quality,
                          background=settings.background_rgb, tonemap=settings.tonemap,
                          hdr_output=settings.hdr_output, color=settings.thumbnail_color,
                          resize_light=settings.resize_light,
                          gps=settings.metadata_gps == "keep",
                          preview=settings.video_preview, storyboard=settings.video_storyboard,
                          motion_preview=settings.motion_photo_clip,
                          max_animation_frames=settings.max_animation_frames,
                          max_animation_pixels=settings.max_animation_pixels,
                          placeholders=settings.placeholders),
        profiles=settings.thumbnail_profiles,
        thumbnail_bucket=settings.minio_bucket,
        key_template=settings.thumbnail_key_template,
        max_attempts=settings.max_attempts,
        max_input_bytes=settings.max_input_bytes,
        max_read_bytes=settings.max_read_bytes,
        read_in_place=settings.thumbnail_engine is EngineKind.LOCAL,
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
    tracer: Tracer = NO_TRACER,
) -> QueuePoller:
    job_settings = processor_settings(settings)
    # An engine that says whether it reads originals in place decides (the imagor engine
    # does when its probe has storage of its own); otherwise THUMBNAIL_ENGINE does.
    reads_in_place = getattr(components.engine, "reads_in_place", None)
    if reads_in_place is not None:
        job_settings = replace(job_settings, read_in_place=bool(reads_in_place))
    processor = MediaProcessor(
        repository=components.repository,
        storage=components.storage,
        engine=components.engine,
        queue=components.queue,
        settings=job_settings,
        logger=logger,
        metrics=metrics,
        tracer=tracer,
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
    METRICS_PORT is set), the queue gauge, (unless draining) the reconciliation sweep, and the
    status events' dispatchers (one per configured target; they get a few seconds after the
    last job to send what is left).
    The table is checked first: a worker without one would fail every job."""
    for warning in components.repository.verify_schema():
        logger.warning(warning)
    metrics = WorkerMetrics(size.name for size in settings.thumbnail_sizes)
    supervision = Supervision(logger, metrics)
    tracer = build_tracer(**queue_identity(settings))
    poller = build_poller(settings, components, logger, drain=drain, metrics=metrics,
                          supervision=supervision, tracer=tracer)
    install_signal_handlers(poller)
    with ExitStack() as stack:
        stack.callback(tracer.close)  # last: the spans of every job are ended by then
        if tracer is not NO_TRACER:
            logger.info("tracing jobs", endpoint=traces_endpoint())
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
        stack.enter_context(delivering_events(settings, components.repository, logger, metrics,
                                              supervision))
        poller.run()
        if poller.unfinished_jobs:
            tracer.close()
            _exit_abandoning_jobs(components, logger)
    return poller


def queue_identity(settings: Settings) -> dict[str, str]:
    """How job spans name their queue: SQS and the queue's name, or the embedded file."""
    if settings.sqs_queue_url:
        return {"system": "aws_sqs",
                "destination": settings.sqs_queue_url.rstrip("/").rsplit("/", 1)[-1]}
    return {"system": "sqlite", "destination": Path(settings.embedded_queue_path).name}


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


