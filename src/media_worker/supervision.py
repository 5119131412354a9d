"""Background loops that cannot die silently: the heartbeat, the reconciler, the queue gauge.

Each runs one `step` every `interval` on a daemon thread. A step that raises (any exception:
an unmapped library error, a bug) is logged with its traceback, counted in
`media_worker_background_failures_total{thread}`, and tried again after a backoff that grows
with consecutive failures (tenacity's exponential wait with jitter, capped by the loop's own
interval so a heartbeat never falls a whole period behind). After `unhealthy_after` failures in
a row the loop is reported failing, and `/healthz` answers 503 until a step succeeds again;
a thread that ended while it should run is reported too.

Why not a process supervisor: these loops share the worker's clients and in-flight jobs; only
a thread of the same process can extend a message's visibility while its job decodes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import wait_exponential_jitter

from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics

DEFAULT_UNHEALTHY_AFTER = 3
FIRST_BACKOFF_SECONDS = 1.0


@dataclass
class Liveness:
    """What `/healthz` asks: which supervised loops are failing or gone, and why."""

    _loops: dict[str, SupervisedLoop] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, loop: SupervisedLoop) -> None:
        with self._lock:
            self._loops[loop.name] = loop

    def problems(self) -> dict[str, str]:
        """Loop name → what is wrong with it; empty while everything is alive."""
        with self._lock:
            loops = list(self._loops.values())
        return {loop.name: problem for loop in loops if (problem := loop.problem())}


@dataclass
class Supervision:
    """What every supervised loop reports to: the logger, the metrics and `/healthz`."""

    logger: Logger
    metrics: WorkerMetrics | None = None
    liveness: Liveness = field(default_factory=Liveness)

    def loop(self, name: str, step: Callable[[], None], *, interval: float,
             run_first: bool = False,
             unhealthy_after: int = DEFAULT_UNHEALTHY_AFTER) -> SupervisedLoop:
        loop = SupervisedLoop(name, step, interval=interval, run_first=run_first,
                              unhealthy_after=unhealthy_after, supervision=self)
        self.liveness.register(loop)
        return loop


class SupervisedLoop:
    """Runs `step` every `interval` seconds until `stop()`, surviving whatever it raises."""

    def __init__(self, name: str, step: Callable[[], None], *, interval: float,
                 run_first: bool, unhealthy_after: int, supervision: Supervision) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._run_first = run_first
        self._unhealthy_after = max(1, unhealthy_after)
        self._supervision = supervision
        self._backoff = wait_exponential_jitter(initial=FIRST_BACKOFF_SECONDS,
                                                max=max(FIRST_BACKOFF_SECONDS, interval))
        self._stop = threading.Event()
        self._failures = 0
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def problem(self) -> str | None:
        """Why this loop is not healthy, or None."""
        if self._stop.is_set():
            return None
        if self._thread.ident is not None and not self._thread.is_alive():
            return "thread ended"
        if self._failures >= self._unhealthy_after:
            return f"failed {self._failures} times in a row: {self._last_error}"
        return None

    def _run(self) -> None:
        delay = 0.0 if self._run_first else self._interval
        while not self._stop.wait(delay):
            delay = self._interval if self._attempt() else self._next_backoff()

    def _attempt(self) -> bool:
        try:
            self._step()
        except Exception as exc:
            self._failed(exc)
            return False
        if self._failures:
            self._supervision.logger.info("background loop recovered", thread=self.name,
                                          failures=self._failures)
        self._failures = 0
        return True

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self._last_error = short_error(exc, limit=200)
        self._supervision.logger.exception("background loop failed; retrying", thread=self.name,
                                           failures=self._failures, errorType=type(exc).__name__)
        if self._supervision.metrics is not None:
            self._supervision.metrics.background_failure(self.name)

    def _next_backoff(self) -> float:
        return float(self._backoff(_RetryState(self._failures)))


@dataclass(frozen=True)
class _RetryState:
    """The one attribute tenacity's wait strategies read from a retry state."""

    attempt_number: int
