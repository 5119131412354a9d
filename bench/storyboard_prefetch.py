"""15c. A storyboard read in place with its tiles' keyframes prefetched side by side, against
the same job fetching each tile as FFmpeg reads it (ObjectReader.prefetch turned off), on the
loopback SeaweedFS of bench 15 and with a round trip added to every GET (S3 answers its first
byte in tens of milliseconds; loopback in well under one).

Run by bench.ranged_reads on its files: the 1 GB job (three sizes, preview, storyboard) and the
60-minute file's storyboard. Both sides in one process, interleaved repetitions; target: the
prefetching side no slower (ratio ≤ 1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import Report, Row, Target, median, seconds
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.storage.reader import ObjectReader
from media_worker.storage.s3 import S3Storage

ADDED_LATENCIES = (0.0, 0.02)  # seconds before each GET is sent


@contextmanager
def prefetching(enabled: bool) -> Iterator[None]:
    """ObjectReader.prefetch as it is, or taking nothing (every tile fetched as read)."""
    original = ObjectReader.prefetch
    if not enabled:
        ObjectReader.prefetch = lambda self, ranges: 0  # type: ignore[method-assign]
    try:
        yield
    finally:
        ObjectReader.prefetch = original  # type: ignore[method-assign]


@contextmanager
def added_latency(storage: S3Storage, seconds_per_get: float) -> Iterator[None]:
    """Each GetObject of `storage`'s client waits this long before it is sent."""
    def wait(**_: Any) -> None:
        time.sleep(seconds_per_get)

    events = storage._client.meta.events  # the bench's own storage: no other way in
    events.register("before-send.s3.GetObject", wait)
    try:
        yield
    finally:
        events.unregister("before-send.s3.GetObject", wait)


def prefetch_rows(storage: S3Storage, *, bucket: str, key: str, label: str,
                  output: OutputSpec, sizes: list[Any], reps: int, report: Report) -> None:
    engine = LocalEngine(max_pixels=100_000_000, max_video_seconds=36_000, storage=storage)
    source = SourceMedia(None, bucket, key, max_read_bytes=1 << 40)
    for latency in ADDED_LATENCIES:
        walls: dict[bool, list[float]] = {True: [], False: []}
        with added_latency(storage, latency):
            for _ in range(reps):
                for enabled in (True, False):
                    with prefetching(enabled):
                        start = time.perf_counter()
                        engine.render(source, sizes, output)
                        walls[enabled].append(time.perf_counter() - start)
        ours, theirs = median(walls[True]), median(walls[False])
        report.add(Row("15c storyboard keyframes prefetched vs fetched as read: wall",
                       f"{label}, +{latency * 1000:.0f} ms per GET", seconds(ours),
                       seconds(theirs), ours / theirs, Target("<=", 1)))
