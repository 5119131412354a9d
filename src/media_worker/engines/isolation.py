"""Runs an engine in child processes, so a hang or a crash in a C decoder costs one job.

libvips, libheif and FFmpeg are C libraries fed with untrusted bytes: a fuzzer-found file can
segfault or spin forever. The worker process must survive both, so rendering happens in a
pebble process pool: a render past its timeout has its child killed (a thread could not be
stopped), and a child that dies takes only its own job with it. pebble is used instead of
`concurrent.futures.ProcessPoolExecutor` because the latter cannot kill a timed-out task and
breaks the whole pool when one child dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeoutError

from pebble import ProcessExpired, ProcessPool

from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia, ThumbnailEngine
from media_worker.errors import CorruptMediaError, LimitExceededError
from media_worker.types import ThumbnailSize

EngineFactory = Callable[[], ThumbnailEngine]
# Children are spawned, not forked: forking a parent that runs threads (the poller's) can copy a
# lock held by another thread. Shared objects handed to children (the decode budget) come from
# the same context.
SPAWN = multiprocessing.get_context("spawn")

# The engine of *this child process*, built once by the pool's initializer: a process pool
# can only reach per-process state through module scope. The parent never sets it.
_child_engine: ThumbnailEngine | None = None


def _start_child(factory: EngineFactory) -> None:
    global _child_engine  # noqa: PLW0603 - per-child-process state, see above
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _GLIBC.limit_arenas()
    _child_engine = factory()


def _render_in_child(
    source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
) -> RenderResult:
    assert _child_engine is not None, "pool initializer did not run"
    try:
        return _child_engine.render(source, sizes, output)
    finally:
        _GLIBC.give_back_free_memory()


class _Allocator:
    """glibc's malloc, told to keep a decoder's memory bounded by its current job.

    libvips, libheif and FFmpeg allocate from many threads, and glibc gives each thread an
    arena of its own (up to 8 per core) that keeps freed memory for reuse. A decoder running
    the corpus mix again and again grew from 93 to 370 MB in four rounds and never gave it
    back. Two arenas, and a trim after each job, held it at 124-145 MB (docs/performance.md).
    Elsewhere than glibc (musl, macOS) both are no-ops.
    """

    _M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
    ARENAS = 2

    def __init__(self) -> None:
        try:
            self._libc: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c"))
            self._libc.mallopt  # noqa: B018 - probing for glibc's symbols
            self._libc.malloc_trim  # noqa: B018
        except (OSError, AttributeError, TypeError):
            self._libc = None

    def limit_arenas(self) -> None:
        if self._libc is not None:
            self._libc.mallopt(self._M_ARENA_MAX, self.ARENAS)

    def give_back_free_memory(self) -> None:
        if self._libc is not None:
            self._libc.malloc_trim(0)


_GLIBC = _Allocator()


class IsolatedEngine:
    """A ThumbnailEngine that delegates every render to a killable child process."""

    def __init__(self, factory: EngineFactory, *, workers: int, timeout_seconds: float,
                 max_tasks_per_child: int = 500) -> None:
        self._timeout = timeout_seconds
        self._pool = ProcessPool(
            max_workers=workers,
            max_tasks=max_tasks_per_child,  # recycle children: bounds leaks in C libraries
            initializer=_start_child,
            initargs=(factory,),
            context=SPAWN,
        )

    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        future = self._pool.schedule(_render_in_child, args=(source, sizes, output),
                                     timeout=self._timeout)
        try:
            return future.result()
        except FutureTimeoutError:
            raise LimitExceededError(
                f"rendering took longer than {self._timeout:g} s (JOB_TIMEOUT_SECONDS); "
                "the decoder was stopped"
            ) from None
        except ProcessExpired as exc:
            reason = _describe_exit(exc.exitcode)
            raise CorruptMediaError(f"the decoder crashed ({reason})") from None

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
