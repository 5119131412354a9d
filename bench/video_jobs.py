"""15b. Whole video jobs read in place: what the local engine fetches and how long it takes to
render a video's default sizes, preview clip and storyboard from a reader of the stored object,
against downloading it and rendering the local copy; and the storyboard of a 60-minute file.

Run by bench.ranged_reads on the same SeaweedFS server and the same files (moov at the end),
through an S3Storage with the worker's read-ahead (app/adapters.py). Target (issue 15): bytes
≤ 2% of the file or 16 MB, whichever is larger; the 60-minute storyboard ≤ 5% of the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Report, Row, Target, median, run_quietly, seconds
from media_worker.app.adapters import ORIGINAL_READ_AHEAD_FIRST
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.renditions import PreviewSpec, StoryboardSpec
from media_worker.storage.read_ahead import ReadAhead
from media_worker.storage.s3 import S3Storage
from media_worker.types import ThumbnailSize

MB = 1_000_000
SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480,large:1280x1280")
JOB = OutputSpec(preview=PreviewSpec(320, 320, 2.0), storyboard=StoryboardSpec(160, 90))
STORYBOARD = OutputSpec(storyboard=StoryboardSpec(160, 90))
HOUR_SECONDS = 3600


def worker_storage(endpoint: str, access_key: str, secret_key: str) -> S3Storage:
    return S3Storage(endpoint_url=endpoint, access_key_id=access_key,
                     secret_access_key=secret_key,
                     read_ahead=ReadAhead(first=ORIGINAL_READ_AHEAD_FIRST))


def hour_long(folder: Path, base: Path) -> Path:
    """`base` (20 s) looped to 60 minutes, moov at the end."""
    path = folder / "60min-moov-end.mp4"
    if not path.exists():
        run_quietly(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop",
                     str(HOUR_SECONDS // 20 - 1), "-i", str(base), "-c", "copy", str(path)])
    return path


@dataclass(frozen=True)
class JobCost:
    line: str  # of the detail table
    in_place: list[float]  # wall of each repetition
    download: list[float]


def job_rows(storage: S3Storage, *, bucket: str, key: str, path: Path, label: str,
             scratch: Path, reps: int, report: Report, output: OutputSpec = JOB,
             share_target: float | None = None) -> JobCost:
    """Rows for one file; returns its line of the detail table and the walls."""
    engine = LocalEngine(max_pixels=100_000_000, max_video_seconds=36_000, storage=storage)
    size = path.stat().st_size
    ours, theirs, fetched = [], [], 0
    for _ in range(reps):
        start = time.perf_counter()
        result = engine.render(SourceMedia(None, bucket, key, max_read_bytes=1 << 40),
                               SIZES, output)
        ours.append(time.perf_counter() - start)
        fetched = int(result.metadata["bytesRead"])
        start = time.perf_counter()
        copy = scratch / "original"
        try:
            storage.download(bucket, key, copy)
            engine.render(SourceMedia(copy, bucket, key), SIZES, output)
        finally:
            copy.unlink(missing_ok=True)
        theirs.append(time.perf_counter() - start)
    allowed = share_target if share_target is not None else max(0.02, 16 * MB / size)
    name = "15b storyboard of a 60-minute file" if share_target else "15b video job"
    report.add(Row(f"{name}: bytes", label, f"{fetched / MB:.2f} MB", f"{size / MB:.0f} MB",
                   fetched / size, Target("<=", round(allowed, 3))))
    report.add(Row(f"{name}: wall", label, seconds(median(ours)), seconds(median(theirs)),
                   median(ours) / median(theirs)))
    return JobCost(f"| {label} | {size / MB:.0f} MB | {fetched / MB:.2f} MB | "
                   f"{fetched / size:.2%} | {seconds(median(ours))} | {seconds(median(theirs))} |",
                   ours, theirs)
