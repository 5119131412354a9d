"""QueuePoller: capacity-bound receiving, draining, graceful stop (ports replaced by fakes)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace

import structlog

from media_worker.config import ThumbnailFormat
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.outcomes import Outcome
from media_worker.poller import PollerSettings, QueuePoller
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.queue.port import QueueDepth, ReceivedMessage
from media_worker.types import MediaStatus, ThumbnailSize
from tests.fakes import FakeEngine, FakeQueue, FakeRepository, FakeStorage, new_row


@dataclass
class SlowEngine(FakeEngine):
    """Takes `seconds` per render and records the peak number of renders at once."""

    seconds: float = 0.2
    running: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return super().render(source, sizes, output)


def make_poller(jobs: int, *, concurrency: int = 2, drain: bool = True, seconds: float = 0.05,
                grace: float = 5.0, prefetch: int = 0, queue: FakeQueue | None = None,
                wait_seconds: int = 0,
                ) -> tuple[QueuePoller, FakeRepository, FakeQueue, SlowEngine]:
    queue, storage, repository = queue or FakeQueue(), FakeStorage(), FakeRepository()
    engine = SlowEngine(seconds=seconds)
    for _ in range(jobs):
        queue.send(json.dumps({"mediaId": new_row(repository, storage)}))
    log = structlog.get_logger("test")
    processor = MediaProcessor(
        repository=repository, storage=storage, engine=engine, queue=queue, logger=log,
        settings=ProcessorSettings(sizes=ThumbnailSize.parse_list("s:10x10"),
                                   output=OutputSpec(ThumbnailFormat.PNG), thumbnail_bucket="m"),
    )
    poller = QueuePoller(
        queue=queue, processor=processor, repository=repository, logger=log,
        settings=PollerSettings(concurrency=concurrency, prefetch=prefetch,
                                wait_seconds=wait_seconds,
                                poll_interval_seconds=0.01, visibility_timeout=30,
                                shutdown_grace_seconds=grace, drain=drain),
    )
    return poller, repository, queue, engine


def run_then_stop(poller: QueuePoller, *, after: float) -> None:
    """Run the poller in a thread, stop it `after` seconds, wait for it to return."""
    runner = threading.Thread(target=poller.run)
    runner.start()
    time.sleep(after)
    poller.stop()
    runner.join(timeout=5)
    assert not runner.is_alive(), "the poller did not return after stop()"


def test_drain_processes_every_message_then_exits() -> None:
    poller, repository, _, _ = make_poller(jobs=7)
    outcomes = poller.run()
    assert outcomes[Outcome.READY] == 7
    assert repository.count_by_status()[MediaStatus.READY] == 7


def test_never_runs_more_jobs_than_the_concurrency() -> None:
    poller, _, _, engine = make_poller(jobs=9, concurrency=3)
    poller.run()
    assert engine.peak == 3


def spy_on_receives(queue: FakeQueue) -> list[int]:
    """The `max_messages` of every receive call, in order."""
    received: list[int] = []
    original = queue.receive

    def spy(max_messages: int, wait_seconds: float) -> list:
        received.append(max_messages)
        return original(max_messages, wait_seconds)

    queue.receive = spy  # type: ignore[method-assign]
    return received


def test_without_prefetch_receives_no_more_messages_than_free_slots() -> None:
    poller, _, queue, _ = make_poller(jobs=5, concurrency=2)
    received = spy_on_receives(queue)
    poller.run()
    assert max(received) <= 2


def test_prefetch_fills_free_slots_and_the_buffer_in_one_receive() -> None:
    poller, _, queue, engine = make_poller(jobs=12, concurrency=2, prefetch=2)
    received = spy_on_receives(queue)
    outcomes = poller.run()
    assert outcomes[Outcome.READY] == 12
    assert received[0] == 4
    assert engine.peak == 2  # messages received ahead wait; they never run beyond concurrency


def test_no_receive_while_messages_received_ahead_have_not_started() -> None:
    """Steady state: one receive per `prefetch` jobs, not one per job."""
    poller, _, queue, _ = make_poller(jobs=12, concurrency=2, prefetch=2)
    received = spy_on_receives(queue)
    poller.run()
    nonempty = [count for count in received if count > 0]
    assert len(nonempty) <= 1 + 12 // 2 + 1  # first fill, then a batch of 2 per refill, drain


def test_prefetch_never_asks_for_more_than_the_sqs_batch_size() -> None:
    poller, _, queue, _ = make_poller(jobs=30, concurrency=8, prefetch=8)  # max_messages 10
    received = spy_on_receives(queue)
    poller.run()
    assert max(received) == 10


def test_stop_lets_in_flight_jobs_finish_and_receives_nothing_more() -> None:
    poller, repository, queue, _ = make_poller(jobs=6, concurrency=2, drain=False, seconds=0.5)
    run_then_stop(poller, after=0.2)
    counts = repository.count_by_status()
    assert counts[MediaStatus.READY] == 2
    assert counts[MediaStatus.PENDING] == 4
    assert len(queue.inbox) == 4


def test_stop_hands_back_messages_received_ahead_at_once() -> None:
    poller, repository, queue, _ = make_poller(jobs=6, concurrency=2, drain=False, seconds=0.5,
                                               prefetch=2)
    run_then_stop(poller, after=0.2)
    counts = repository.count_by_status()
    assert counts[MediaStatus.READY] == 2  # the two running jobs finish
    assert counts[MediaStatus.PENDING] == 4
    assert sorted(queue.visibility.values()) == [0, 0]  # the two received ahead: visible now
    assert len(queue.inbox) == 2  # never received


def test_job_outliving_the_grace_period_is_handed_back() -> None:
    poller, repository, queue, _ = make_poller(jobs=1, concurrency=1, drain=False,
                                               seconds=1.5, grace=0.1)
    run_then_stop(poller, after=0.3)
    row = next(iter(repository.rows.values()))
    assert row.status is MediaStatus.PENDING
    assert row.error == "interrupted by worker shutdown"
    assert queue.visibility == {"m0": 0}


def test_no_receiving_ahead_while_the_database_is_down() -> None:
    """Messages received ahead would only be deferred in turn, each spending a receive."""
    from media_worker.errors import RepositoryUnavailableError

    poller, repository, queue, _ = make_poller(jobs=20, concurrency=2, drain=False, prefetch=2)
    received = spy_on_receives(queue)
    repository.fail_with = RepositoryUnavailableError("database unreachable")
    run_then_stop(poller, after=0.5)
    assert received[0] == 4  # before anything was deferred: slots and prefetch
    assert poller.outcomes[Outcome.DEFERRED] > 4
    assert max(received[1:]) <= 2  # afterwards: free slots only


@dataclass
class RedeliveringQueue(FakeQueue):
    """Hands a message hidden for a while back to a later receive, as SQS does."""

    hidden: list[tuple[float, ReceivedMessage]] = field(default_factory=list)

    def change_visibility(self, message: ReceivedMessage, timeout_seconds: int) -> None:
        super().change_visibility(message, timeout_seconds)
        again = replace(message, receive_count=message.receive_count + 1)
        self.hidden.append((time.monotonic() + timeout_seconds, again))

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        now = time.monotonic()
        self.inbox += [message for due, message in self.hidden if due <= now]
        self.hidden = [(due, message) for due, message in self.hidden if due > now]
        return super().receive(max_messages, wait_seconds)


def test_drain_waits_for_a_job_whose_row_commits_after_its_message() -> None:
    queue = RedeliveringQueue()
    poller, repository, _, _ = make_poller(jobs=0, queue=queue)
    media_id = "committed-late"
    queue.inbox.append(ReceivedMessage("late", "r-late", json.dumps({"mediaId": media_id}), 1,
                                       time.time()))
    storage = poller._processor._storage
    threading.Timer(0.5, lambda: new_row(repository, storage, media_id=media_id)).start()
    outcomes = poller.run()
    assert outcomes[Outcome.AWAITING_ROW] == 1
    assert outcomes[Outcome.READY] == 1
    assert repository.rows[media_id].status is MediaStatus.READY


@dataclass
class LongPollingQueue(FakeQueue):
    """Waits the whole long poll when it has nothing, as SQS does; notes when each receive
    began."""

    receives_at: list[float] = field(default_factory=list)

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        self.receives_at.append(time.monotonic())
        batch = super().receive(max_messages, wait_seconds)
        if not batch:
            time.sleep(wait_seconds)
        return batch


def test_drain_exits_without_another_long_poll_once_the_last_job_ends() -> None:
    queue = LongPollingQueue()
    poller, _, _, engine = make_poller(jobs=3, seconds=0.3, queue=queue, wait_seconds=1)
    finished_at: list[float] = []
    render = engine.render

    def timed_render(*args: object) -> RenderResult:
        result = render(*args)  # type: ignore[arg-type]
        finished_at.append(time.monotonic())
        return result

    engine.render = timed_render  # type: ignore[method-assign]
    poller.run()
    assert poller.outcomes[Outcome.READY] == 3
    assert not [at for at in queue.receives_at if at > max(finished_at)]


@dataclass
class DelayedQueue(FakeQueue):
    """Reports a delayed message (DelaySeconds) for a while, then delivers it."""

    deliver_at: float = 0.0
    held: list[ReceivedMessage] = field(default_factory=list)

    def receive(self, max_messages: int, wait_seconds: float) -> list[ReceivedMessage]:
        if self.held and time.monotonic() >= self.deliver_at:
            self.inbox += self.held
            self.held = []
        return super().receive(max_messages, wait_seconds)

    def depth(self) -> QueueDepth:
        return QueueDepth(visible=len(self.inbox), in_flight=0, delayed=len(self.held))


def test_drain_waits_for_a_delayed_message() -> None:
    queue = DelayedQueue(deliver_at=time.monotonic() + 1.5)
    poller, repository, _, _ = make_poller(jobs=0, queue=queue)
    storage = poller._processor._storage
    media_id = new_row(repository, storage)
    queue.held.append(ReceivedMessage("later", "r-later", json.dumps({"mediaId": media_id}), 1))
    outcomes = poller.run()
    assert outcomes[Outcome.READY] == 1
