"""A job in flight: the delivery being worked on and, once won, the claim on its row.

The poller creates one per received message and the processor fills in the claim, so the
heartbeat (which runs on its own thread) can extend both the message's visibility and the
row's lease while the job's thread is busy decoding.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import ValidationError

from media_worker.observability.tracing import NO_TRACE, JobTrace, StageTrace
from media_worker.queue.port import ReceivedMessage
from media_worker.repository.port import Claim
from media_worker.types import WorkerQueueMessage


@dataclass
class InFlightJob:
    """Mutable state of one delivery while a worker thread handles it."""

    message: ReceivedMessage
    started: float = field(default_factory=time.monotonic)
    claim: Claim | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    kind: str | None = None  # image or video, once the engine has seen the bytes
    stages: dict[str, float] = field(default_factory=dict)  # stage → seconds
    handling_since: float | None = None  # when a worker thread took it up (after any wait)
    returns_in: float | None = None  # seconds the processor hid the message for, if it did
    request: WorkerQueueMessage | None = None  # the parsed message, once it parsed
    trace: JobTrace = NO_TRACE  # the job's span while a tracer handles it (tracing.py)
    # Held by the heartbeat while it extends, and by the processor for its last word on the
    # message (delete, backoff, dead-letter): an extension can never land after that word.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def settling(self) -> Iterator[None]:
        """The job's final operation on its message: from here on nothing extends it."""
        with self.lock:
            self.finished.set()
            yield

    @contextmanager
    def timed(self, stage: str) -> Iterator[StageTrace]:
        """Add the time spent inside the block to `stage`, which is also a span of the job's
        trace (given to the block, for its attributes)."""
        started = time.monotonic()
        try:
            with self.trace.stage(stage) as span:
                yield span
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.monotonic() - started

    @property
    def running_seconds(self) -> float:
        """Time since a thread took the job up; 0 while it waits, received ahead."""
        return 0.0 if self.handling_since is None else time.monotonic() - self.handling_since


class PoisonMessageError(ValueError):
    """The message body can never be processed (not JSON, no mediaId, …)."""


def parse_message(body: str) -> WorkerQueueMessage:
    """Parse a job message, or raise PoisonMessageError saying why it is unusable."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoisonMessageError(f"body is not JSON ({exc.msg})") from None
    if not isinstance(payload, dict):
        raise PoisonMessageError(f"body is JSON {type(payload).__name__}, not an object")
    try:
        return WorkerQueueMessage.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise PoisonMessageError(f"{where}: {first['msg']}") from None
