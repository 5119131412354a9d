"""Where a render's time goes: the decode, then one encode per rendition.

A render runs in a decoder process, which imports no tracing library and exports nothing (it
can be killed mid-job). So the engine only notes when each encode began and ended, and the
timings travel back with the RenderResult; the worker process records them as trace spans
(observability/otel_tracing.py). Times are `time.time_ns()`: the wall clock, which the
processes of one host share, unlike the monotonic clock of each.

The decode is what comes before the first encode: sniffing, probing and decoding the picture
(for a video, finding its representative frame). A clip's "encode" includes decoding the frames
it shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

DECODE = "decode"
ENCODE = "encode"


@dataclass(frozen=True)
class RenderTiming:
    """One stage of a render: `decode`, or the `encode` of the rendition named `size`."""

    stage: str
    start_ns: int
    end_ns: int
    size: str | None = None


# The timings of the render running in this thread; None outside `measured()`, where
# `encoding()` then costs a lookup and nothing more.
_current: ContextVar[list[RenderTiming] | None] = ContextVar("render_timings", default=None)


@contextmanager
def measured() -> Iterator[list[RenderTiming]]:
    """Collect the timings of the render inside the block, the decode first once it is over."""
    timings: list[RenderTiming] = []
    token = _current.set(timings)
    started = time.time_ns()
    try:
        yield timings
    finally:
        _current.reset(token)
        decoded = timings[0].start_ns if timings else time.time_ns()
        timings.insert(0, RenderTiming(DECODE, started, decoded))


@contextmanager
def encoding(size: str) -> Iterator[None]:
    """Time the encode of the rendition `size` (a size name, `preview`, `storyboard`)."""
    timings = _current.get()
    started = time.time_ns()
    try:
        yield
    finally:
        if timings is not None:
            timings.append(RenderTiming(ENCODE, started, time.time_ns(), size))
