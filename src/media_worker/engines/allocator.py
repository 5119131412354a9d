"""glibc's malloc, told to keep a decoder process's memory bounded by its current job.

libvips, libheif and FFmpeg allocate from many threads, and glibc gives each thread an arena of
its own (up to 8 per core) that keeps freed memory for reuse: a decoder running the corpus mix
again and again grew round after round and never gave the memory back. Two arenas, and a trim
after each job, keep it near what the current job needs (the figures: docs/performance.md,
"Memory"; `bench/decoder_memory.py` measures it). Elsewhere than glibc (musl, macOS) both are
no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
# Two: the setting measured to hold a decoder's memory flat across jobs; one would put every
# decoder thread behind the same allocator lock.
ARENAS = 2


class Allocator:
    """The two glibc calls a decoder process makes: at start, and after each job."""

    def __init__(self) -> None:
        try:
            self._libc: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c"))
            self._libc.mallopt  # noqa: B018 - probing for glibc's symbols
            self._libc.malloc_trim  # noqa: B018
        except (OSError, AttributeError, TypeError):
            self._libc = None

    @property
    def is_glibc(self) -> bool:
        return self._libc is not None

    def limit_arenas(self) -> None:
        """At most ARENAS malloc arenas in this process from now on."""
        if self._libc is not None:
            self._libc.mallopt(M_ARENA_MAX, ARENAS)

    def give_back_free_memory(self) -> None:
        """Return the free pages of every arena to the kernel."""
        if self._libc is not None:
            self._libc.malloc_trim(0)


GLIBC = Allocator()
