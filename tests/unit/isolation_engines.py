"""Misbehaving engines for the isolation tests; a module of their own so that spawned child
processes can import them by name."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.errors import UnsupportedMediaError
from media_worker.types import ThumbnailSize


class BehaviourEngine:
    """Does what the source file's content says: 'crash', 'hang', 'unsupported', 'bug' (an
    exception no decoder code translated, as a library binding raises on a fuzzed file),
    'arenas' (count glibc's malloc arenas while threads allocate) or renders."""

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        command = source.path.read_text()
        if command == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if command == "hang":
            time.sleep(3600)
        if command == "unsupported":
            raise UnsupportedMediaError("unsupported media type: test")
        if command == "arenas":
            return RenderResult([], {"arenas": arenas_while_threads_allocate()})
        if command == "bug":
            codec_context = None
            return codec_context.width  # type: ignore[attr-defined, no-any-return]
        thumbs = [RenderedThumbnail(s, 1, 1, "png", "image/png", str(os.getpid()).encode())
                  for s in sizes]
        return RenderResult(thumbs, {"pid": os.getpid()})

    def close(self) -> None:
        pass


def arenas_while_threads_allocate(threads: int = 6) -> int:
    """glibc's arena count (malloc_info's heaps) while `threads` threads, all alive, have each
    allocated blocks too big for pymalloc and too small for mmap: without a limit glibc gives
    each its own arena."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    allocated, finished = threading.Barrier(threads + 1), threading.Event()

    def allocate() -> None:
        blocks = [bytearray(64 * 1024) for _ in range(4)]
        allocated.wait()
        finished.wait()
        del blocks

    workers = [threading.Thread(target=allocate) for _ in range(threads)]
    for worker in workers:
        worker.start()
    allocated.wait()
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "malloc-info.xml"
        stream = libc.fopen(str(report).encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        count = report.read_text().count("<heap nr=")
    finished.set()
    for worker in workers:
        worker.join()
    return count
