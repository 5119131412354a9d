"""The heartbeat: extends what is in flight, never what a job has settled, never a runaway."""

from __future__ import annotations

import json
import threading
import time

import structlog

from media_worker.errors import StorageUnavailableError
from media_worker.heartbeat import Heartbeat
from media_worker.jobs import InFlightJob
from media_worker.outcomes import Outcome
from media_worker.poller import PollerSettings, QueuePoller
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.queue.port import ReceivedMessage
from media_worker.types import ThumbnailSize
from tests.fakes import FakeEngine, FakeQueue, FakeRepository, FakeStorage, new_row
from tests.unit.test_poller import OutputSpec, ThumbnailFormat


def heartbeat(queue: FakeQueue, jobs: list[InFlightJob]) -> Heartbeat:
    return Heartbeat(queue=queue, repository=FakeRepository(), jobs=lambda: jobs,
                     visibility_timeout=30, max_job_seconds=60,
                     logger=structlog.get_logger("test"))


def a_message() -> ReceivedMessage:
    return ReceivedMessage("m1", "r1", "{}", 1)


def test_a_message_waiting_ahead_is_kept_invisible_however_long_it_waits() -> None:
    """The runaway cut-off (max_job_seconds) counts from when a thread takes the job up."""
    queue = FakeQueue()
    waiting = InFlightJob(a_message(), started=time.monotonic() - 10_000)
    heartbeat(queue, [waiting]).beat()
    assert queue.visibility == {"m1": 30}


def test_a_job_running_past_max_job_seconds_is_let_go() -> None:
    queue = FakeQueue()
    runaway = InFlightJob(a_message(), handling_since=time.monotonic() - 10_000)
    heartbeat(queue, [runaway]).beat()
    assert queue.visibility == {}


def test_a_settled_job_is_never_extended() -> None:
    queue = FakeQueue()
    job = InFlightJob(a_message())
    with job.settling():
        queue.change_visibility(job.message, 12)  # the processor's backoff
    heartbeat(queue, [job]).beat()
    assert queue.visibility == {"m1": 12}


class RecordingQueue(FakeQueue):
    """Remembers every visibility change in order, and long-polls like SQS when empty."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[int] = []

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        super().change_visibility(message, timeout_seconds)
        self.history.append(timeout_seconds)

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        batch = super().receive(max_messages, wait_seconds)
        if not batch:
            time.sleep(wait_seconds)
        return batch


class FailingEngine(FakeEngine):
    def render(self, *_args: object) -> object:
        raise StorageUnavailableError("store down")


def test_a_retrys_backoff_is_not_undone_while_the_loop_long_polls() -> None:
    """The job ends (hidden for its backoff) while the main loop sits in a long poll; the
    heartbeat beats every second meanwhile and must leave the backoff alone."""
    queue, storage, repository = RecordingQueue(), FakeStorage(), FakeRepository()
    queue.send(json.dumps({"mediaId": new_row(repository, storage)}))
    log = structlog.get_logger("test")
    processor = MediaProcessor(
        repository=repository, storage=storage, engine=FailingEngine(), queue=queue,
        logger=log, settings=ProcessorSettings(
            sizes=ThumbnailSize.parse_list("s:10x10"), output=OutputSpec(ThumbnailFormat.PNG),
            thumbnail_bucket="m", retry_base_seconds=100, retry_max_seconds=100))
    poller = QueuePoller(queue=queue, processor=processor, repository=repository, logger=log,
                         settings=PollerSettings(concurrency=2, wait_seconds=3,
                                                 visibility_timeout=3))
    runner = threading.Thread(target=poller.run)
    runner.start()
    time.sleep(2.5)
    poller.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert poller.outcomes[Outcome.RETRY] == 1
    assert queue.history[-1] >= 50  # the backoff, not the heartbeat's 3 s
