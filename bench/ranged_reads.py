"""15. Originals read in place: what one video frame costs through ranged reads, against a
whole download.

Inputs: H.264 MP4s of about 10 MB, 100 MB, 400 MB and 1 GB (640x360, noise-laden testsrc2 at
4 Mb/s, a keyframe every 2 s; the larger ones are the 10 MB clip looped with stream copy, so
making them costs disk writes, not encoding), each with the `moov` at the end (ffmpeg's
default), remuxed with `-movflags +faststart` and remuxed fragmented (a fragment per keyframe,
with the `mfra` index FFmpeg's muxer writes at the end, which the worker opens it from);
`--quick` makes the 10 and 100 MB ones. They
are made once per run with Debian's ffmpeg in the run's temporary directory (removed at its
end) and stored in SeaweedFS (a production S3 server, on loopback). Not moto: it answers a
ranged GET by loading the whole object first, so a range there costs what the object's size
does (docs/performance.md).

- ours: `S3Storage.open_reader` with the worker's read-ahead + the worker's open of a video
  (`opened_video`: PyAV's file-object input in the worker's read size) + seek to 10% of the
  duration + decode one frame; bytes are the reader's
  `bytes_fetched`.
- anchor: `S3Storage.download` to a temporary file + the same open, seek and decode on it
  (the full-download path, which the worker took before reading in place and still takes for
  a still); bytes are the object's size.

Targets (issue 15), each a row with PASS or MISS:
- bytes fetched ≤ 2% of the file or 16 MB, whichever is larger, at every size;
- wall time flat within noise as the file grows: the repetitions at the largest size (1 GB;
  100 MB with `--quick`) overlap those at 10 MB, the fastest of them no slower than the
  slowest at 10 MB (ratio ≤ 1); the medians and the download's beside them for scale. For one
  frame, and for the whole job of bench/video_jobs.py against 10 MB and 100 MB (at 10 MB the
  job reads all of the file in a few long GETs; from 100 MB on, a GET per storyboard tile);
- the storyboard of a 60-minute file reads ≤ 5% of it (bench/video_jobs.py).
Loopback has no latency and no bandwidth limit, so the wall-time ratio against the download is
the least the reader gains; each range is a round trip, so over a real network it gains more
where downloads are slower.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tests.servers import ServerUnavailable, find_weed, seaweedfs_server

from bench.common import Inputs, Report, Row, Skip, Target, median, run_quietly, seconds
from media_worker.app.adapters import ORIGINAL_READ_AHEAD_FIRST
from media_worker.engines.sniff import HEAD_BYTES, sniff_bytes
from media_worker.engines.video_source import opened_video
from media_worker.storage.read_ahead import ReadAhead
from media_worker.storage.s3 import S3Storage

MB = 1_000_000
BUCKET = "bench-ranged"
SEEK_FRACTION = 0.1
MAX_READ_BYTES = 1 << 40  # measured, not limited
BASE_SECONDS = 20
LOOPS = {"10 MB": 1, "100 MB": 10, "400 MB": 40, "1 GB": 96}
QUICK_SIZES = ("10 MB", "100 MB")
FRAGMENTED = "+frag_keyframe+empty_moov+default_base_moof"  # a fragment per keyframe


@dataclass(frozen=True)
class Video:
    size: str  # "10 MB" … "1 GB"
    layout: str  # "moov at the end" or "faststart"
    path: Path

    @property
    def label(self) -> str:
        return f"{self.size}, {self.layout}"

    @property
    def key(self) -> str:
        return f"videos/{self.path.name}"


@dataclass(frozen=True)
class Cost:
    wall: float
    fetched: int
    pts: int


def make_videos(workdir: Path, quick: bool) -> list[Video]:
    """The inputs, moov at the end, faststart and fragmented for each size."""
    if shutil.which("ffmpeg") is None:
        raise Skip("`ffmpeg` not installed (apt-get install ffmpeg)")
    folder = workdir / "ranged"
    folder.mkdir(exist_ok=True)
    base = folder / "base.mp4"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={BASE_SECONDS}",
            "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
            "-g", "50", "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M",
            "-pix_fmt", "yuv420p", str(base))
    videos = []
    for label, loops in LOOPS.items():
        if quick and label not in QUICK_SIZES:
            continue
        name = label.replace(" ", "")
        moov_end = folder / f"{name}-moov-end.mp4"
        _ffmpeg("-stream_loop", str(loops - 1), "-i", str(base), "-c", "copy", str(moov_end))
        faststart = folder / f"{name}-faststart.mp4"
        _ffmpeg("-i", str(moov_end), "-c", "copy", "-movflags", "+faststart", str(faststart))
        fragmented = folder / f"{name}-fragmented.mp4"
        _ffmpeg("-i", str(moov_end), "-c", "copy", "-movflags", FRAGMENTED, str(fragmented))
        videos += [Video(label, "moov at the end", moov_end), Video(label, "faststart", faststart),
                   Video(label, "fragmented", fragmented)]
    return videos


def _ffmpeg(*args: str) -> None:
    run_quietly(["ffmpeg", "-v", "error", "-nostdin", "-y", *args])


def one_frame(file: Path | BinaryIO) -> int:
    """Open as the worker opens a video (engines/video_source.opened_video: a reader in
    FFMPEG_READ_BYTES pieces, a fragmented MP4 from its index), seek to 10% of the duration,
    decode one frame; its pts."""
    if isinstance(file, Path):
        with file.open("rb") as local:
            head = local.read(HEAD_BYTES)
    else:
        head = file.read(HEAD_BYTES)
        file.seek(0)
    with opened_video(file, sniff_bytes(head), max_pixels=None,
                      max_seconds=None) as (container, stream, facts):
        target = facts.duration * SEEK_FRACTION
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        frame = next(container.decode(stream))
        return int(frame.pts)


def via_reader(storage: S3Storage, video: Video) -> Cost:
    start = time.perf_counter()
    with storage.open_reader(BUCKET, video.key, max_read_bytes=MAX_READ_BYTES) as reader:
        pts = one_frame(reader)
        fetched = reader.bytes_fetched
    return Cost(time.perf_counter() - start, fetched, pts)


def via_download(storage: S3Storage, video: Video, scratch: Path) -> Cost:
    start = time.perf_counter()
    destination = scratch / "original.mp4"
    try:
        fetched = storage.download(BUCKET, video.key, destination)
        pts = one_frame(destination)
    finally:
        destination.unlink(missing_ok=True)
    return Cost(time.perf_counter() - start, fetched, pts)


@contextmanager
def _stored(videos: list[Video], workdir: Path) -> Iterator[tuple[S3Storage, Any]]:
    try:
        find_weed()
    except ServerUnavailable as exc:
        raise Skip(str(exc)) from None
    with seaweedfs_server(workdir) as server:
        storage = S3Storage(endpoint_url=server.endpoint, access_key_id=server.access_key,
                            secret_access_key=server.secret_key,
                            read_ahead=ReadAhead(first=ORIGINAL_READ_AHEAD_FIRST))
        try:
            storage.ensure_bucket(BUCKET)
            for video in videos:
                storage.upload_file(BUCKET, video.key, video.path, "video/mp4")
            yield storage, server
        finally:
            storage.close()


def ranged_reads_bench(inputs: Inputs, reps: int, report: Report) -> None:
    videos = make_videos(inputs.workdir, inputs.quick)
    detail = ["| original | size | reader: fetched | share | reader: wall | download: wall | "
              "wall ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    server_dir = Path(tempfile.mkdtemp(prefix="seaweedfs-", dir=inputs.workdir))
    walls: dict[Video, tuple[list[float], list[float]]] = {}
    with _stored(videos, server_dir) as (storage, server):
        for video in videos:
            size = video.path.stat().st_size
            ours, theirs = _measure(storage, video, inputs.workdir, reps)
            walls[video] = ([c.wall for c in ours], [c.wall for c in theirs])
            fetched = ours[0].fetched
            share = fetched / size
            allowed = max(0.02, 16 * MB / size)
            wall_ratio = median(c.wall for c in ours) / median(c.wall for c in theirs)
            report.add(Row("15 ranged reads: bytes of one frame", video.label,
                           f"{fetched / MB:.2f} MB", f"{size / MB:.0f} MB", share,
                           Target("<=", round(allowed, 3))))
            report.add(Row("15 ranged reads: wall of one frame", video.label,
                           seconds(median(c.wall for c in ours)),
                           seconds(median(c.wall for c in theirs)), wall_ratio))
            detail.append(f"| {video.label} | {size / MB:.0f} MB | {fetched / MB:.2f} MB | "
                          f"{share:.2%} | {seconds(median(c.wall for c in ours))} | "
                          f"{seconds(median(c.wall for c in theirs))} | {wall_ratio:.3f}× |")
        flat_rows(report, "15 ranged reads: wall of one frame as the file grows", walls)
        jobs = _video_jobs(server, videos, inputs.workdir, reps, report)
    report.section(f"15 ranged reads vs download, SeaweedFS on loopback ({reps} repetitions, "
                   "medians)", "\n".join(detail))
    report.section("15b whole video jobs (3 sizes, preview, storyboard) read in place vs "
                   "download + render; the 60-minute file: its storyboard alone",
                   "\n".join(jobs))


def flat_rows(report: Report, bench: str,
              walls: dict[Video, tuple[list[float], list[float]]], *,
              baseline: str | None = None) -> None:
    """Per layout: the reader's wall at the largest size against `baseline` (the smallest
    size by default). Flat within noise: the repetitions overlap, the fastest at the largest
    size no slower than the slowest at the baseline (ratio ≤ 1); the medians and the
    download's for scale in the cells."""
    for layout in dict.fromkeys(video.layout for video in walls):
        series = [video for video in walls if video.layout == layout]
        small = next((video for video in series if video.size == baseline), series[0])
        large = series[-1]
        if large == small:
            continue
        (ours_small, theirs_small), (ours_large, theirs_large) = walls[small], walls[large]
        report.add(Row(bench, f"{large.size} vs {small.size}, {layout}: fastest vs slowest",
                       f"{seconds(median(ours_large))} vs {seconds(median(ours_small))}",
                       f"download {seconds(median(theirs_large))} vs "
                       f"{seconds(median(theirs_small))} "
                       f"({median(theirs_large) / median(theirs_small):.0f}×)",
                       min(ours_large) / max(ours_small), Target("<=", 1)))


def _video_jobs(server: Any, videos: list[Video], scratch: Path, reps: int,
                report: Report) -> list[str]:
    """bench/video_jobs.py's rows on the files with the moov at the end and a 60-minute one,
    through a storage with the worker's read-ahead."""
    from bench import storyboard_prefetch, video_jobs

    lines = ["| original | size | fetched | share | in place: wall | download + render: "
             "wall |", "|---|---:|---:|---:|---:|---:|"]
    storage = video_jobs.worker_storage(server.endpoint, server.access_key, server.secret_key)
    walls: dict[Video, tuple[list[float], list[float]]] = {}
    try:
        for video in videos:
            if video.layout == "moov at the end":
                job = video_jobs.job_rows(
                    storage, bucket=BUCKET, key=video.key, path=video.path, label=video.label,
                    scratch=scratch, reps=reps, report=report)
                lines.append(job.line)
                walls[video] = (job.in_place, job.download)
        largest = max(walls, key=lambda video: video.path.stat().st_size)
        storyboard_prefetch.prefetch_rows(storage, bucket=BUCKET, key=largest.key,
                                          label=f"{largest.size} job", output=video_jobs.JOB,
                                          sizes=video_jobs.SIZES, reps=reps, report=report)
        # At 10 MB the job reads the whole file in a few long GETs (the preview clip and a
        # tile every 0.2 s read on through it); from 100 MB each storyboard tile is a jump of
        # its own: about 105 GETs, whatever the size after that.
        for baseline in ("10 MB", "100 MB"):
            flat_rows(report, "15b video job: wall as the file grows", walls, baseline=baseline)
        hour = video_jobs.hour_long(videos[0].path.parent, videos[0].path.parent / "base.mp4")
        storage.upload_file(BUCKET, f"videos/{hour.name}", hour, "video/mp4")
        lines.append(video_jobs.job_rows(
            storage, bucket=BUCKET, key=f"videos/{hour.name}", path=hour,
            label="60 minutes, moov at the end", scratch=scratch, reps=max(1, reps // 3),
            report=report, output=video_jobs.STORYBOARD, share_target=0.05).line)
        storyboard_prefetch.prefetch_rows(storage, bucket=BUCKET, key=f"videos/{hour.name}",
                                          label="60-minute storyboard",
                                          output=video_jobs.STORYBOARD, sizes=video_jobs.SIZES,
                                          reps=max(1, reps // 3), report=report)
    finally:
        storage.close()
    return lines


def _measure(storage: S3Storage, video: Video, scratch: Path, reps: int
             ) -> tuple[list[Cost], list[Cost]]:
    """Interleaved repetitions of both paths, after one warm-up of each; both must land on
    the same frame."""
    via_reader(storage, video)
    via_download(storage, video, scratch)
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(via_reader(storage, video))
        theirs.append(via_download(storage, video, scratch))
    if {c.pts for c in ours} != {c.pts for c in theirs}:
        raise RuntimeError(f"{video.label}: the reader and the download decoded different "
                           f"frames ({ours[0].pts} vs {theirs[0].pts})")
    return ours, theirs
