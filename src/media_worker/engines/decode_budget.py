"""A memory budget for the decodes that cannot stream, shared by a worker's decoder processes.

Most thumbnails stream: libvips decodes a baseline JPEG at 1/2-1/8 scale a few lines at a time,
so a 24 MP photo costs a few MB. Some inputs cannot: a progressive JPEG keeps every DCT
coefficient of the whole picture until its last scan (2 bytes x 1.5 samples per pixel at
4:2:0, 68 MB for 24 MP, whatever the shrink), an interlaced PNG is decoded whole, and libheif
and Pillow (HEIC, AVIF, BMP, damaged JPEGs) decode the full picture. Two of those at once on two
decoders double the peak. The budget (DECODE_MEMORY_MB) admits such a decode only while the
estimates of the ones running fit beside it. A decode alone is always admitted, so a picture
bigger than the budget still renders (MAX_PIXELS bounds that), and a decode that has waited
MAX_WAIT_SECONDS runs anyway: the wait counts against the render's timeout, and a decoder stuck
on a hostile file must not get healthy jobs killed behind it.

Decoders are killed on timeout and may crash, so nothing here may depend on a process giving
back what it took. The reservations live in shared memory, one slot per process id, and a
reader drops those of processes that no longer exist; they are read and written under
`flock` on a file, a lock the kernel releases when its holder dies. (A multiprocessing
Condition was tried first: a decoder killed while waiting on it left the next release blocked
forever in notify_all.) Waiters poll, which costs nothing at a few decodes a second.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from multiprocessing.context import BaseContext
from pathlib import Path

MEGABYTE = 1024 * 1024
SLOTS = 256  # at least RENDER_PROCESSES' upper bound: one reservation per decoder at a time
POLL_SECONDS = 0.05
MAX_WAIT_SECONDS = 60.0
# Decodes below this are not counted against the budget: they are not what makes a peak, and
# waiting for them would only add latency.
MIN_BUDGETED_MEGABYTES = 16


class DecodeBudget:
    """Megabytes of non-streaming decodes allowed at once across processes. Built in the
    parent and handed to each decoder process when it is spawned."""

    def __init__(self, megabytes: int, context: BaseContext, *,
                 max_wait_seconds: float = MAX_WAIT_SECONDS) -> None:
        self.megabytes = megabytes
        self.max_wait_seconds = max_wait_seconds
        self._pids = context.Array("i", SLOTS, lock=False)
        self._reserved = context.Array("i", SLOTS, lock=False)
        handle, name = tempfile.mkstemp(prefix="media-worker-decode-budget-")
        os.close(handle)
        self._lock_path = name
        # Only the process that built the budget removes the file (children get a copy of the
        # object by pickling, without this finalizer).
        weakref.finalize(self, _remove, name)

    @contextmanager
    def admit(self, megabytes: int) -> Iterator[None]:
        """Hold `megabytes` of the budget for the duration of the block, waiting until they fit
        beside the decodes already running, none is running, or MAX_WAIT_SECONDS have passed."""
        if megabytes <= 0:
            yield
            return
        slot = self._reserve(megabytes)
        try:
            yield
        finally:
            with self._locked():
                self._pids[slot], self._reserved[slot] = 0, 0

    def in_use(self) -> int:
        """Megabytes reserved by live processes right now."""
        with self._locked():
            return self._used()

    def _reserve(self, megabytes: int) -> int:
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            with self._locked():
                used = self._used()
                if used == 0 or used + megabytes <= self.megabytes or (
                        time.monotonic() >= deadline):
                    slot = self._pids[:].index(0)
                    self._pids[slot], self._reserved[slot] = os.getpid(), megabytes
                    return slot
            time.sleep(POLL_SECONDS)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with Path(self._lock_path).open("rb") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield  # closing the file (or the holder dying) releases the lock

    def _used(self) -> int:
        """The sum of live reservations; those of vanished processes are dropped on the way."""
        used = 0
        for slot in range(SLOTS):
            pid = self._pids[slot]
            if pid == 0:
                continue
            if _alive(pid):
                used += self._reserved[slot]
            else:
                self._pids[slot], self._reserved[slot] = 0, 0
        return used


def admitted(budget: DecodeBudget | None, megabytes: int) -> AbstractContextManager[None]:
    """The budget's admission for a decode of `megabytes`; small decodes are not counted."""
    if budget is None or megabytes < MIN_BUDGETED_MEGABYTES:
        return nullcontext()
    return budget.admit(megabytes)


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
