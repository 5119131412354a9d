"""The composition root's part for status events: what the repositories record, the targets
built from Settings, and the dispatchers and upkeep a running worker supervises."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from media_worker.aws_access import open_session
from media_worker.config import Settings
from media_worker.events.aws_signed import SignedPoster
from media_worker.events.dispatcher import Dispatcher, DispatchSettings
from media_worker.events.keeper import OutboxKeeper, keeper_interval
from media_worker.events.outbox import EventRecording, OutboxStore
from media_worker.events.target import EventTarget
from media_worker.observability.logging import Logger
from media_worker.observability.metrics import WorkerMetrics
from media_worker.repository.port import MediaStore
from media_worker.supervision import SupervisedLoop, Supervision

# After the last job of a stopping worker, the dispatchers get this long to send what is left;
# whatever remains is sent by another replica or the next start.
FLUSH_SECONDS = 5.0


def event_recording(settings: Settings) -> EventRecording:
    """What every status change writes: outbox rows for the configured targets only, and the
    NOTIFY on PostgreSQL (unless EVENTS_PG_CHANNEL is empty)."""
    return EventRecording(targets=settings.event_targets, channel=settings.events_notify_channel)


def build_event_targets(settings: Settings, logger: Logger | None = None) -> list[EventTarget]:
    """A target per configured destination, in the order of Settings.event_targets."""
    targets: list[EventTarget] = []
    for name in settings.event_targets:
        if name == "webhook":
            from media_worker.events.webhook_target import WebhookTarget

            assert settings.events_webhook_url
            assert settings.events_webhook_secret
            targets.append(WebhookTarget(
                settings.events_webhook_url, settings.events_webhook_secret.get_secret_value(),
                timeout_seconds=settings.events_webhook_timeout_seconds))
        elif name == "sqs":
            from media_worker.events.aws_batch import sqs_target

            assert settings.events_sqs_url
            targets.append(sqs_target(settings.events_sqs_url,
                                      signed_poster(settings, "sqs", logger)))
        else:
            from media_worker.events.aws_batch import sns_target

            assert settings.events_sns_topic_arn
            targets.append(sns_target(settings.events_sns_topic_arn,
                                      signed_poster(settings, "sns", logger)))
    return targets


def signed_poster(settings: Settings, service: str, logger: Logger | None) -> SignedPoster:
    """Calls to `service` ("sqs" or "sns") signed with the credentials Settings give, at the
    endpoint botocore resolves for them (the configured one, else the region's)."""
    access = settings.events_access(service)
    opened = open_session(access)
    if opened.warning and logger is not None:
        logger.warning(opened.warning)
    resolver = opened.session.client(service, endpoint_url=access.endpoint_url)
    try:
        endpoint, region = resolver.meta.endpoint_url, resolver.meta.region_name
    finally:
        resolver.close()
    return SignedPoster(endpoint, service=service, region=region,
                        credentials=opened.session.get_credentials())


@dataclass
class EventDelivery:
    """The running dispatchers (one per target) and the outbox's upkeep."""

    dispatchers: list[Dispatcher] = field(default_factory=list)
    loops: list[SupervisedLoop] = field(default_factory=list)

    def stop(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        """Stop the loops, then give each dispatcher `flush_seconds` to send what is left."""
        for loop in self.loops:
            loop.stop()
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        until = time.monotonic() + flush_seconds
        for loop in self.loops:
            loop.join(max(0.0, until - time.monotonic()))
        for dispatcher in self.dispatchers:
            dispatcher.flush(until)


@contextmanager
def delivering_events(settings: Settings, repository: MediaStore, logger: Logger,
                      metrics: WorkerMetrics, supervision: Supervision) -> Iterator[EventDelivery]:
    """Dispatchers for the configured targets (none: nothing runs) for the block's duration."""
    delivery = EventDelivery()
    with ExitStack() as stack:
        targets = build_event_targets(settings, logger)
        for target in targets:
            stack.callback(target.close)
        if targets:
            _start(delivery, targets, settings=settings, store=repository.outbox(),
                   logger=logger, metrics=metrics, supervision=supervision)
            stack.callback(delivery.stop)
        yield delivery


def _start(delivery: EventDelivery, targets: list[EventTarget], *, settings: Settings,
           store: OutboxStore, logger: Logger, metrics: WorkerMetrics,
           supervision: Supervision) -> None:
    metrics.event_targets(target.name for target in targets)
    dispatch = DispatchSettings(max_age_seconds=settings.events_max_age_seconds)
    interval = settings.events_poll_interval_ms / 1000
    for target in targets:
        dispatcher = Dispatcher(store, target, settings=dispatch, logger=logger, metrics=metrics)
        delivery.dispatchers.append(dispatcher)
        delivery.loops.append(supervision.loop(f"events-{target.name}", dispatcher.step,
                                               interval=interval, run_first=True))
        logger.info("delivering status events", target=target.name, where=target.describe())
    keeper = OutboxKeeper(store, targets=[t.name for t in targets],
                          max_age_seconds=settings.events_max_age_seconds, logger=logger,
                          metrics=metrics)
    delivery.loops.append(supervision.loop("events-outbox", keeper.step, run_first=True,
                                           interval=keeper_interval(
                                               settings.events_max_age_seconds)))
    for loop in delivery.loops:
        loop.start()
