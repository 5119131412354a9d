"""Runs decoder work in child processes, so a hang or a crash in a C decoder costs one job.

libvips, libheif and FFmpeg are C libraries fed with untrusted bytes: a fuzzer-found file can
segfault or spin forever. The worker process must survive both, so decoding happens in a
pebble process pool: work past its timeout has its child killed (a thread could not be
stopped), and a child that dies takes only its own job with it. pebble is used instead of
`concurrent.futures.ProcessPoolExecutor` because the latter cannot kill a timed-out task and
breaks the whole pool when one child dies.

Whatever a child raises about the bytes it was given is a permanent failure of that job: a
media error as it was raised, and any other exception (a library binding tripping over a fuzzed
file) as a CorruptMediaError naming its type. Retrying the same bytes on the same decoder
cannot help. Only failures of the worker's own machinery (the pool, pickling the arguments)
reach the caller as they are.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from media_worker.engines.allocator import GLIBC
from media_worker.engines.decode_errors import unexpected_error
from media_worker.engines.lifetime import die_with_parent
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia, ThumbnailEngine
from media_worker.errors import CorruptMediaError, JobTimeoutError, MediaWorkerError
from media_worker.types import ThumbnailSize

EngineFactory = Callable[[], ThumbnailEngine]
# Children are spawned, not forked: forking a parent that runs threads (the poller's) can copy a
# lock held by another thread. Shared objects handed to children (the decode budget) come from
# the same context.
SPAWN = multiprocessing.get_context("spawn")
# Children are replaced after this many tasks: bounds what leaks in the C libraries accumulate.
MAX_TASKS_PER_CHILD = 500
CLOSE_WAIT_SECONDS = 10

# What *this child process* works with (an engine, a prober), built once by the pool's
# initializer: a process pool can only reach per-process state through module scope. The
# parent never sets it.
_child_worker: Any = None


def _start_child(factory: Callable[[], object]) -> None:
    global _child_worker  # noqa: PLW0603 - per-child-process state, see above
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent()
    GLIBC.limit_arenas()
    # One decoder per core already: OpenMP's thread per core in LibRaw's demosaic (and any
    # other OpenMP-built decoder) would only contend. Read when such a library first loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _child_worker = factory()


def _call_in_child(method: str, path: Path | None, *args: Any) -> Any:
    """`_child_worker.method(*args)`, working on the file at `path` (None: an original the
    child reads in place, from storage); see the module docstring for what becomes of its
    exceptions."""
    assert _child_worker is not None, "pool initializer did not run"
    try:
        return getattr(_child_worker, method)(*args)
    except MediaWorkerError:
        raise
    except Exception as exc:  # whatever a decoder raises about its input
        raise CorruptMediaError(unexpected_error(path, exc)) from None
    finally:
        GLIBC.give_back_free_memory()


class DecoderPool:
    """Killable child processes, each holding the object `factory` builds, that call its
    methods on one file at a time."""

    def __init__(self, factory: Callable[[], object], *, workers: int, timeout_seconds: float,
                 max_tasks_per_child: int = MAX_TASKS_PER_CHILD) -> None:
        self._timeout = timeout_seconds
        self._pool = ProcessPool(max_workers=workers, max_tasks=max_tasks_per_child,
                                 initializer=_start_child, initargs=(factory,), context=SPAWN)

    def call(self, method: str, path: Path | None, *args: Any,
             doing: str = "decoding", timeout_seconds: float | None = None) -> Any:
        """The child's `method(*args)`; `doing` names the work in the timeout's message;
        `timeout_seconds` replaces the pool's timeout for this call."""
        timeout = timeout_seconds if timeout_seconds is not None else self._timeout
        future = self._pool.schedule(_call_in_child, args=(method, path, *args),
                                     timeout=timeout)
        try:
            return future.result()
        except FutureTimeoutError:
            raise JobTimeoutError(
                f"{doing} took longer than {timeout:g} s (JOB_TIMEOUT_SECONDS); "
                "the decoder was stopped"
            ) from None
        except ProcessExpired as exc:
            raise CorruptMediaError(
                f"the decoder crashed ({_describe_exit(exc.exitcode)})") from None

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=CLOSE_WAIT_SECONDS)


class IsolatedEngine:
    """A ThumbnailEngine that delegates every render to a killable child process."""

    def __init__(self, factory: EngineFactory, *, workers: int, timeout_seconds: float,
                 max_tasks_per_child: int = MAX_TASKS_PER_CHILD) -> None:
        self._pool = DecoderPool(factory, workers=workers, timeout_seconds=timeout_seconds,
                                 max_tasks_per_child=max_tasks_per_child)

    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        result: RenderResult = self._pool.call("render", source.path, source, sizes, output,
                                               doing="rendering")
        return result

    def close(self) -> None:
        self._pool.close()


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
