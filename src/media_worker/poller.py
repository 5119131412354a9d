"""QueuePoller: receive while there is capacity, run jobs concurrently, keep them alive, stop
gracefully.

Jobs run on a thread pool: the heavy work (libvips, FFmpeg, boto3, psycopg) releases the GIL, so
threads keep both cores busy while one job waits on the network. A separate heartbeat thread
extends the visibility of in-flight messages and the leases of their rows, so a long decode can
never starve it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from media_worker.errors import QueueUnavailableError
from media_worker.handback import abandon, hand_back_unstarted
from media_worker.heartbeat import Heartbeat
from media_worker.jobs import InFlightJob
from media_worker.observability.logging import Logger, short_error
from media_worker.outcomes import Outcome
from media_worker.processor import MediaProcessor
from media_worker.queue.port import MessageQueue
from media_worker.repository.port import MediaRepository
from media_worker.supervision import Supervision

_STOP_CHECK_SECONDS = 0.1
# A message we hid comes back to a receive within about this long of its due time (servers
# sweep visibility once a second or so); past that, another worker took it.
_DUE_BACK_SLACK_SECONDS = 5.0


@dataclass(frozen=True)
class PollerSettings:
    """How the poller receives and paces itself."""

    concurrency: int = 2
    # Messages held ready beyond the running jobs. Received in one call once the previous
    # batch has started, so a receive serves several jobs (one ReceiveMessage per job was the
    # largest per-job cost on the queue side), and a job can start the moment a slot frees.
    prefetch: int = 0
    max_messages: int = 10
    wait_seconds: int = 10
    poll_interval_seconds: float = 5.0
    visibility_timeout: int = 300
    shutdown_grace_seconds: float = 30.0
    max_job_seconds: float = 3600.0
    drain: bool = False


class QueuePoller:
    """Feeds received messages to a MediaProcessor on a bounded thread pool."""

    def __init__(
        self,
        *,
        queue: MessageQueue,
        processor: MediaProcessor,
        repository: MediaRepository,
        settings: PollerSettings,
        logger: Logger,
        supervision: Supervision | None = None,
    ) -> None:
        self._queue = queue
        self._processor = processor
        self._repository = repository
        self._settings = settings
        self._log = logger
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._in_flight: dict[Future[Outcome], InFlightJob] = {}
        # Messages our jobs hid for a while (a retry's backoff, a row not committed yet), by
        # message id → when they are due back: a drain is not done while one is out.
        self._due_back: dict[str, float] = {}
        self._prefetching = True  # off while jobs come back deferred (a dependency is down)
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self._last_receive_empty = False
        self._supervision = supervision or Supervision(logger)
        self._heartbeat = Heartbeat(queue=queue, repository=repository, jobs=self._jobs,
                                    visibility_timeout=settings.visibility_timeout,
                                    max_job_seconds=settings.max_job_seconds, logger=logger)
        self.outcomes: Counter[Outcome] = Counter()

    def stop(self, reason: str | None = None) -> None:
        """Stop receiving; in-flight jobs get the grace period to finish. Signal-safe: it
        only sets a flag and an event (the loop logs the reason, never a signal handler)."""
        self._stop_reason = reason
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> Counter[Outcome]:
        """Consume until stopped (or, with drain, until the queue is empty and idle)."""
        pool = ThreadPoolExecutor(self._settings.concurrency, thread_name_prefix="job")
        heartbeat = self._supervision.loop("heartbeat", self._heartbeat.beat,
                                           interval=self._heartbeat.interval)
        heartbeat.start()
        self._log.info("worker started", concurrency=self._settings.concurrency,
                       drain=self._settings.drain)
        try:
            while not self._stopping.is_set():
                if not self._poll_once(pool):
                    break
        finally:
            self._stopping.set()
            if self._stop_reason:
                self._log.info("stopping; finishing in-flight jobs", reason=self._stop_reason)
            self._shut_down(pool)
            heartbeat.stop()
            self._finished.set()
        self._log.info("worker stopped", **{k.value: v for k, v in self.outcomes.items()})
        return self.outcomes

    # --- receiving --------------------------------------------------------------------------
    def _poll_once(self, pool: ThreadPoolExecutor) -> bool:
        """One turn of the loop; False when a drain is complete."""
        self._collect_finished()
        if self._drained():
            return False
        wanted = self._receivable()
        if wanted <= 0:
            self._wait_for_a_slot(timeout=1.0)
            return True
        try:
            messages = self._queue.receive(wanted, self._wait_seconds())
            self._last_receive_empty = not messages
        except QueueUnavailableError as exc:
            self._log.warning("receive failed; pausing", error=short_error(exc),
                              pauseSeconds=self._settings.poll_interval_seconds)
            self._stopping.wait(self._settings.poll_interval_seconds)
            return True
        for message in messages:
            self._due_back.pop(message.message_id, None)
            job = InFlightJob(message)
            future = pool.submit(self._processor.handle, job)
            # Finished the moment the job ends, not when this loop next collects it (up to a
            # long poll later): the heartbeat must not touch its message in between.
            future.add_done_callback(lambda _done, job=job: job.finished.set())
            with self._lock:
                self._in_flight[future] = job
        if messages:
            return True
        return self._idle()

    def _drained(self) -> bool:
        """A drain is done when nothing is in flight or due back, the last receive found the
        queue empty and it still reports nothing visible or delayed (one GetQueueAttributes,
        not another long poll, after the last job); an outage is not done."""
        if not (self._settings.drain and self._last_receive_empty) or self._in_flight:
            return False
        self._forget_overdue()
        if self._due_back:
            return False
        try:
            depth = self._queue.depth()
        except QueueUnavailableError:
            return False
        return depth.visible + depth.delayed == 0

    def _receivable(self) -> int:
        """How many messages to ask for now: none while some received ahead have not started
        yet; otherwise enough to fill the free slots and the prefetch, up to SQS's batch size."""
        held = len(self._in_flight)
        if held > self._settings.concurrency:
            return 0
        prefetch = self._settings.prefetch if self._prefetching else 0
        capacity = self._settings.concurrency + prefetch
        return min(capacity - held, self._settings.max_messages)

    def _wait_seconds(self) -> int:
        # While draining, a short long-poll keeps the exit prompt; one second still asks every
        # SQS server (a zero wait only samples some of them and can miss messages).
        return min(self._settings.wait_seconds, 1) if self._settings.drain else (
            self._settings.wait_seconds)

    def _idle(self) -> bool:
        if self._settings.drain:
            if not self._in_flight:
                return self._wait_for_due_back()
            self._wait_for_a_slot(timeout=1.0)
            return True
        self._stopping.wait(self._settings.poll_interval_seconds)
        return True

    def _wait_for_due_back(self) -> bool:
        """While draining with nothing in flight: wait (up to a second) for the next message
        we hid to be due back. Whether the drain is done is `_drained`'s to say, at the next
        turn: one place looks at the queue's depth."""
        self._forget_overdue()
        if self._due_back:
            wait_for = min(self._due_back.values()) - time.monotonic()
            self._stopping.wait(min(1.0, max(0.0, wait_for)))
        return True

    def _forget_overdue(self) -> None:
        """Past its due time and the slack, a message we hid was taken by another worker."""
        now = time.monotonic()
        self._due_back = {message_id: due for message_id, due in self._due_back.items()
                          if due + _DUE_BACK_SLACK_SECONDS > now}

    def _wait_for_a_slot(self, timeout: float) -> None:
        """Until a job finishes, `timeout` passes or stop() is called. Waits in short slices
        so a stop is noticed before a message received ahead would start."""
        with self._lock:
            futures = list(self._in_flight)
        deadline = time.monotonic() + timeout
        while futures and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = wait(futures, timeout=min(remaining, _STOP_CHECK_SECONDS),
                           return_when=FIRST_COMPLETED)
            if done:
                break
        self._collect_finished()

    def _collect_finished(self) -> None:
        with self._lock:
            done = [future for future in self._in_flight if future.done()]
            for future in done:
                job = self._in_flight.pop(future)
                job.finished.set()
                if job.returns_in is not None:
                    self._due_back[job.message.message_id] = time.monotonic() + job.returns_in
        outcomes = [self._outcome_of(future) for future in done]
        self.outcomes.update(outcomes)
        if outcomes:
            # While jobs only come back deferred, receive for free slots alone: messages
            # received ahead would only be deferred too, each receive spending a receive count.
            self._prefetching = Outcome.DEFERRED not in outcomes
        if Outcome.DEFERRED in outcomes:
            self._back_off()

    def _outcome_of(self, future: Future[Outcome]) -> Outcome:
        """The processor never raises; should it ever, that job counts as a retry (its
        message returns after its visibility timeout) and the loop goes on."""
        try:
            return future.result()
        except Exception as exc:
            self._log.exception("job raised past the processor; its message will return",
                                error=short_error(exc))
            return Outcome.RETRY

    def _jobs(self) -> list[InFlightJob]:
        with self._lock:
            return list(self._in_flight.values())

    def _back_off(self) -> None:
        """A dependency is down: stop taking messages for a poll interval rather than burning
        their receive counts (which would push them towards the dead-letter queue)."""
        self._log.warning("database unavailable; pausing before the next receive",
                          pauseSeconds=self._settings.poll_interval_seconds)
        self._stopping.wait(self._settings.poll_interval_seconds)

    # --- shutdown -------------------------------------------------------------------------
    def _shut_down(self, pool: ThreadPoolExecutor) -> None:
        self._hand_back_unstarted()
        with self._lock:
            futures = list(self._in_flight)
        if futures:
            self._log.info("waiting for in-flight jobs", jobs=len(futures),
                           graceSeconds=self._settings.shutdown_grace_seconds)
            wait(futures, timeout=self._settings.shutdown_grace_seconds)
        self._collect_finished()
        with self._lock:
            unfinished = list(self._in_flight.values())
        for job in unfinished:
            abandon(self._queue, self._repository, job, self._log)
        pool.shutdown(wait=not unfinished, cancel_futures=True)

    def _hand_back_unstarted(self) -> None:
        """Messages received ahead whose job has not started go back at once."""
        with self._lock:
            unstarted = [future for future in self._in_flight if future.cancel()]
            jobs = [self._in_flight.pop(future) for future in unstarted]
        hand_back_unstarted(self._queue, jobs, self._log)

    @property
    def unfinished_jobs(self) -> int:
        with self._lock:
            return len(self._in_flight)
