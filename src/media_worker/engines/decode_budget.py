"""A memory budget for the decodes that cannot stream, shared by a worker's decoder processes.

Most thumbnails stream: libvips decodes a baseline JPEG at 1/2-1/8 scale a few lines at a time,
so a 24 MP photo costs a few MB. Some inputs cannot: a progressive JPEG keeps every DCT
coefficient of the whole picture until its last scan (2 bytes x 1.5 samples per pixel at
4:2:0, 72 MB for 24 MP, whatever the shrink), an interlaced PNG is decoded whole, and Pillow
(HEIC, BMP, damaged JPEGs) decodes the full picture. Two of those at once on two decoders
double the peak. The budget (DECODE_MEMORY_MB) admits such a decode only while the estimates
of the ones running fit beside it; a decode alone is always admitted, so a picture bigger than
the budget still renders (MAX_PIXELS bounds that) and nothing can wait forever.

Not a semaphore: estimates differ (a 12 MP HEIC, a 48 MP progressive JPEG), and a decoder
killed on timeout or by a crash would never give its units back. Each reservation here carries
its process id, and a waiter drops the reservations of processes that no longer exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import BaseContext
from pathlib import Path

MEGABYTE = 1024 * 1024
SLOTS = 256  # at least RENDER_PROCESSES' upper bound: one reservation per decoder at a time
_RECHECK_SECONDS = 0.5  # how often a waiter looks for reservations of dead processes
# The lock is held for microseconds. Should a decoder ever be killed inside that window, the
# lock would stay taken for good: past this wait the budget fails open (the decode runs
# unbudgeted) rather than hanging every decoder.
_LOCK_TIMEOUT_SECONDS = 10.0


class DecodeBudget:
    """Megabytes of non-streaming decodes allowed at once across processes. Built in the
    parent and handed to each decoder process when it is spawned."""

    def __init__(self, megabytes: int, context: BaseContext) -> None:
        self.megabytes = megabytes
        self._pids = context.Array("i", SLOTS, lock=False)
        self._reserved = context.Array("i", SLOTS, lock=False)
        self._condition = context.Condition()

    @contextmanager
    def admit(self, megabytes: int) -> Iterator[None]:
        """Hold `megabytes` of the budget for the duration of the block, waiting until they fit
        beside the decodes already running (or until none is running)."""
        if megabytes <= 0:
            yield
            return
        slot = self._reserve(megabytes)
        try:
            yield
        finally:
            if slot is not None:
                self._release(slot)

    def in_use(self) -> int:
        """Megabytes reserved by live processes right now."""
        with self._condition:
            return self._used()

    def _reserve(self, megabytes: int) -> int | None:
        """The slot holding the reservation; None when the lock cannot be had (fail open)."""
        if not self._condition.acquire(timeout=_LOCK_TIMEOUT_SECONDS):
            return None
        try:
            while True:
                used = self._used()
                if used == 0 or used + megabytes <= self.megabytes:
                    break
                self._condition.wait(_RECHECK_SECONDS)
            slot = self._pids[:].index(0)
            self._pids[slot], self._reserved[slot] = os.getpid(), megabytes
            return slot
        finally:
            self._condition.release()

    def _release(self, slot: int) -> None:
        locked = self._condition.acquire(timeout=_LOCK_TIMEOUT_SECONDS)
        self._pids[slot], self._reserved[slot] = 0, 0
        if locked:
            self._condition.notify_all()
            self._condition.release()

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
