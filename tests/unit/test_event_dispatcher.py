"""The dispatcher and the outbox's upkeep, on the real SQLite outbox, with a scripted target:
one media's events in order, failures held back per media, a failing target paused, old
events dropped with a line and a metric."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from media_worker.events.dispatcher import Dispatcher, DispatchSettings
from media_worker.events.keeper import OutboxKeeper
from media_worker.events.outbox import EventRecording, OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.metrics import WorkerMetrics
from media_worker.repository.port import NewMedia
from media_worker.repository.sqlite import SqliteMediaRepository
from media_worker.types import ThumbnailData
from tests.unit.test_metrics import sample

THUMB = ThumbnailData(size="small", width=1, height=1, format="webp", mime_type="image/webp",
                      bucket="b", key="k", bytes=1)
Answer = Callable[[OutboxEntry], bool | None]  # True delivered, False failed, None untried


@dataclass
class ScriptedTarget:
    """An EventTarget whose answer per event the test decides; it records every call."""

    answer: Answer = lambda _event: True
    name: str = "webhook"
    max_batch: int = 10
    call_timeout_seconds: float = 1.0
    keeps_batch_order: bool = False
    calls: list[list[OutboxEntry]] = field(default_factory=list)

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        self.calls.append(list(events))
        answers = {e.event_id: self.answer(e) for e in events}
        return DeliveryReport(frozenset(i for i, a in answers.items() if a is True),
                              {i: "refused" for i, a in answers.items() if a is False})

    def delivered_types(self) -> dict[str, list[str]]:
        """Per media, the types of the events sent, in call order."""
        sent: dict[str, list[str]] = {}
        for call in self.calls:
            for event in call:
                sent.setdefault(event.media_id, []).append(event.event_type)
        return sent

    def describe(self) -> str:
        return "scripted"

    def close(self) -> None:
        pass


@dataclass
class World:
    repository: SqliteMediaRepository
    target: ScriptedTarget
    metrics: WorkerMetrics
    clock: list[float]
    dispatcher: Dispatcher

    def job(self, *, retried: bool = False) -> str:
        """A media through its status changes: processing, (retrying, processing,) ready."""
        media_id = str(uuid.uuid4())
        self.repository.insert(NewMedia(id=media_id, bucket="b", key="k"))
        claim = self.repository.claim(media_id, 300, job_id="job")
        assert claim is not None
        if retried:
            self.repository.release(claim, "transient")
            claim = self.repository.claim(media_id, 300, job_id="job")
            assert claim is not None
        self.repository.complete(claim, [THUMB], {})
        return media_id

    def waiting(self) -> list[OutboxEntry]:
        return self.repository.outbox().follow(0, 1000)


def world(tmp_path: Path, target: ScriptedTarget, **settings: float) -> World:
    repository = SqliteMediaRepository(tmp_path / "media.db",
                                       events=EventRecording(targets=(target.name,)))
    repository.migrate()
    metrics = WorkerMetrics()
    clock = [1000.0]
    dispatcher = Dispatcher(repository.outbox(), target,
                            settings=DispatchSettings(**settings),  # type: ignore[arg-type]
                            logger=structlog.get_logger("test"), metrics=metrics,
                            clock=lambda: clock[0])
    return World(repository, target, metrics, clock, dispatcher)


READY = ["media.processing", "media.ready"]
RETRIED = ["media.processing", "media.retrying", "media.processing", "media.ready"]


def test_events_are_delivered_in_order_per_media_and_then_deleted(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())
    first, second = w.job(retried=True), w.job()
    w.dispatcher.step()
    assert w.target.delivered_types() == {first: RETRIED, second: READY}
    assert w.waiting() == []
    assert sample(w.metrics, "media_worker_events_delivered_total", target="webhook") == 6


def test_no_call_carries_two_events_of_one_media(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())
    for _ in range(3):
        w.job(retried=True)
    w.dispatcher.step()
    assert all(len({e.media_id for e in call}) == len(call) for call in w.target.calls)
    assert len(w.target.calls) == 4  # each wave takes the next event of every media


def test_a_wave_holds_at_most_the_targets_batch(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget(max_batch=2))
    for _ in range(5):
        w.job()
    w.dispatcher.step()
    assert max(len(call) for call in w.target.calls) == 2
    assert w.waiting() == []


def test_a_failed_event_holds_back_its_media_but_not_the_others(tmp_path: Path) -> None:
    refused: set[str] = set()
    w = world(tmp_path, ScriptedTarget(answer=lambda e: e.media_id not in refused))
    stuck, free = w.job(), w.job()
    refused.add(stuck)
    with capture_logs() as logs:
        w.dispatcher.step()
    assert w.target.delivered_types()[free] == READY
    assert w.target.delivered_types()[stuck] == ["media.processing"]  # tried once, then held
    left = w.waiting()
    assert [(e.media_id, e.event_type, e.attempts) for e in left] == [
        (stuck, "media.processing", 1), (stuck, "media.ready", 0)]
    assert any(entry["event"].startswith("status events not delivered") for entry in logs)
    assert sample(w.metrics, "media_worker_event_delivery_failures_total",
                  target="webhook") == 1


def test_a_failed_event_is_tried_again_after_its_backoff(tmp_path: Path) -> None:
    calls = {"n": 0}

    def once_refused(_event: OutboxEntry) -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    w = world(tmp_path, ScriptedTarget(answer=once_refused))
    media = w.job()
    w.dispatcher.step()
    w.clock[0] += 120  # the target's pause is over; the row's backoff is in the database
    w.dispatcher.step()
    assert w.target.delivered_types() == {media: ["media.processing"]}
    with sqlite3.connect(tmp_path / "media.db") as conn:  # the row's retry time: now
        conn.execute('UPDATE "MediaEvent" SET "leaseUntil" = NULL')
    w.dispatcher.step()
    assert w.target.delivered_types() == {media: ["media.processing", "media.processing",
                                                  "media.ready"]}
    assert w.waiting() == []


def test_a_target_failing_every_event_is_paused_then_tried_again(tmp_path: Path) -> None:
    up = {"now": False}
    w = world(tmp_path, ScriptedTarget(answer=lambda _e: up["now"], max_batch=1))
    for _ in range(3):
        w.job()
    with capture_logs() as logs:
        w.dispatcher.step()
    assert len(w.target.calls) == 1  # one wave, then the target is paused
    pause = next(entry for entry in logs if entry["event"].startswith("status event target "
                                                                      "failing"))
    w.clock[0] += pause["pauseSeconds"] / 2
    w.dispatcher.step()
    assert len(w.target.calls) == 1
    up["now"] = True
    w.clock[0] += pause["pauseSeconds"]
    w.dispatcher.step()  # the other media's events, not waiting for a retry, go now
    assert sum(len(call) for call in w.target.calls[1:]) == 4


def test_a_target_that_raises_fails_its_events_and_the_dispatcher_goes_on(
    tmp_path: Path,
) -> None:
    def broken(_event: OutboxEntry) -> bool:
        raise RuntimeError("a bug in a target")

    w = world(tmp_path, ScriptedTarget(answer=broken))
    w.job()
    with capture_logs() as logs:
        w.dispatcher.step()
    assert any(entry["event"] == "status event target raised" for entry in logs)
    assert [e.attempts for e in w.waiting()] == [1, 0]


def test_an_event_past_its_maximum_age_is_dropped_with_a_line_and_a_metric(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, ScriptedTarget(), max_age_seconds=0.001)
    media = w.job()
    time.sleep(0.01)  # older than the maximum age (timestamps are in milliseconds)
    with capture_logs() as logs:
        w.dispatcher.step()
    assert w.target.calls == []
    assert w.waiting() == []
    dropped = [entry for entry in logs if entry["event"].startswith("status event dropped")]
    assert [(entry["mediaId"], entry["type"]) for entry in dropped] == [
        (media, "media.processing"), (media, "media.ready")]
    assert sample(w.metrics, "media_worker_events_dropped_total", target="webhook") == 2


def test_no_wave_starts_once_the_lease_could_run_out_during_it(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())

    def slow(_event: OutboxEntry) -> bool:
        w.clock[0] += w.dispatcher.lease_seconds  # this wave took the whole lease
        return True

    w.target.answer = slow
    media = w.job()
    w.dispatcher.round()
    assert w.target.delivered_types() == {media: ["media.processing"]}
    assert [e.event_type for e in w.waiting()] == ["media.ready"]


def test_a_stopped_dispatcher_takes_nothing_more(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())
    w.job()
    w.dispatcher.stop()
    w.dispatcher.step()
    assert w.target.calls == []
    w.dispatcher.flush(until=w.clock[0] + 5)  # the last words of a stopping worker
    assert w.waiting() == []


# --- the upkeep -------------------------------------------------------------------------------
def test_the_keeper_drops_old_events_of_any_target_with_a_line_each(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())
    media = w.job()
    time.sleep(0.05)  # well past the maximum age (timestamps are in milliseconds)
    keeper = OutboxKeeper(w.repository.outbox(), targets=["webhook"], max_age_seconds=0.001,
                          logger=structlog.get_logger("test"), metrics=w.metrics)
    with capture_logs() as logs:
        keeper.step()
    assert w.waiting() == []
    assert [e["mediaId"] for e in logs if e["event"].startswith("status event dropped")] == [
        media, media]
    assert sample(w.metrics, "media_worker_events_dropped_total", target="webhook") == 2


def test_the_keeper_samples_the_outbox_per_target(tmp_path: Path) -> None:
    w = world(tmp_path, ScriptedTarget())
    w.job()
    keeper = OutboxKeeper(w.repository.outbox(), targets=["webhook", "sqs"],
                          max_age_seconds=3600, logger=structlog.get_logger("test"),
                          metrics=w.metrics)
    keeper.step()
    assert sample(w.metrics, "media_worker_outbox_events", target="webhook") == 2
    assert sample(w.metrics, "media_worker_outbox_events", target="sqs") == 0
    age = sample(w.metrics, "media_worker_outbox_oldest_event_age_seconds", target="webhook")
    assert age is not None
    assert 0 <= age < 60


@pytest.mark.parametrize("payload_key", ["type", "id", "mediaId"])
def test_what_the_target_gets_is_the_outbox_payload(tmp_path: Path, payload_key: str) -> None:
    w = world(tmp_path, ScriptedTarget())
    w.job()
    w.dispatcher.step()
    event = w.target.calls[0][0]
    assert json.loads(event.payload)[payload_key] == {
        "type": event.event_type, "id": event.event_id, "mediaId": event.media_id}[payload_key]


def test_a_target_keeping_batch_order_gets_one_medias_events_in_one_call(
    tmp_path: Path,
) -> None:
    target = ScriptedTarget(name="sqs", keeps_batch_order=True)
    w = world(tmp_path, target)
    first, second = w.job(retried=True), w.job()
    w.dispatcher.step()
    assert len(w.target.calls) == 1
    assert [(e.media_id, e.event_type) for e in w.target.calls[0]] == [
        *((first, t) for t in RETRIED), *((second, t) for t in READY)]


def test_in_an_ordered_batch_a_refused_event_holds_back_the_rest_of_its_media(
    tmp_path: Path,
) -> None:
    target = ScriptedTarget(name="sqs", answer=lambda e: e.event_type != "media.retrying",
                            keeps_batch_order=True)
    w = world(tmp_path, target)
    media = w.job(retried=True)
    w.dispatcher.step()
    left = [(e.event_type, e.attempts) for e in w.waiting()]
    # processing delivered; retrying refused (its retry waits); the events after it were
    # sent in the same call and taken, out already: only the refused one is left.
    assert left == [("media.retrying", 1)]
    assert w.target.delivered_types() == {media: RETRIED}
