"""4. Video: wall time to a representative frame's thumbnail, against the ffmpeg command line.

Ours: `LocalEngine.render` in this process with one size (large, 1280x1280 WebP Q80): open,
seek, decode, pick a frame that is not nearly uniform, rotate, resize, encode.
Anchor: `ffmpeg -ss T -i FILE -frames:v 1 out.png` (Debian's ffmpeg) with T the engine's own
seek point (10% of the duration, at most 5 s, 0 for clips under a second).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import av

from bench.common import (
    LARGE,
    WEBP_Q80,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    children_cpu,
    geomean,
    median,
    seconds,
    self_cpu,
)
from bench.images import engine
from media_worker.engines.port import SourceMedia
from media_worker.engines.probe import stream_duration as _duration
from media_worker.engines.video import SEEK_CAP_SECONDS, SEEK_FRACTION, SHORT_CLIP_SECONDS

TARGET = Target("<=", 1.2)


def seek_point(path: Path) -> float:
    """Where the engine seeks in this file, in seconds."""
    with av.open(str(path), metadata_errors="ignore") as container:
        duration = _duration(container, container.streams.video[0])
    if duration < SHORT_CLIP_SECONDS:
        return 0.0
    return min(duration * SEEK_FRACTION, SEEK_CAP_SECONDS)


def video_bench(inputs: Inputs, reps: int, report: Report) -> None:
    if shutil.which("ffmpeg") is None:
        raise Skip("`ffmpeg` not installed (apt-get install ffmpeg)")
    out = inputs.workdir / "frame.png"
    detail = ["| video | T s | ours wall | ours CPU | ffmpeg wall | ffmpeg CPU | ratio (wall) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    ratios, mine_all, theirs_all, names = [], [], [], []
    for path in inputs.videos:
        target = seek_point(path)
        command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{target:.3f}",
                   "-i", str(path), "-frames:v", "1", str(out)]
        source = SourceMedia(path, "bench", path.name)
        try:
            engine().render(source, LARGE, WEBP_Q80)  # warm-up (and a check it renders)
            subprocess.run(command, check=True, capture_output=True)
        except Exception as exc:
            report.note(f"4 video: {path.name} left out: {str(exc).splitlines()[0][:160]}")
            continue
        walls: dict[str, list[float]] = {"ours": [], "ffmpeg": []}
        cpus: dict[str, list[float]] = {"ours": [], "ffmpeg": []}
        for _ in range(reps):
            cpu, start = self_cpu(), time.perf_counter()
            engine().render(source, LARGE, WEBP_Q80)
            walls["ours"].append(time.perf_counter() - start)
            cpus["ours"].append(self_cpu() - cpu)
            cpu, start = children_cpu(), time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls["ffmpeg"].append(time.perf_counter() - start)
            cpus["ffmpeg"].append(children_cpu() - cpu)
        mine, theirs = median(walls["ours"]), median(walls["ffmpeg"])
        ratios.append(mine / theirs)
        names.append(path.name)
        mine_all.append(mine)
        theirs_all.append(theirs)
        detail.append(f"| {path.name} | {target:.2f} | {seconds(mine)} | "
                      f"{seconds(median(cpus['ours']))} | {seconds(theirs)} | "
                      f"{seconds(median(cpus['ffmpeg']))} | {mine / theirs:.2f}× |")
    if not ratios:
        raise Skip("no video could be rendered by both")
    report.add(Row("4 video: time to frame (wall)",
                   f"corpus videos (n={len(ratios)}, geomean of ratios)",
                   seconds(median(mine_all)), seconds(median(theirs_all)), geomean(ratios),
                   TARGET))
    worst = max(range(len(ratios)), key=ratios.__getitem__)
    report.note(f"4 video: worst ratio {ratios[worst]:.2f}× ({names[worst]}); total ours "
                f"{sum(mine_all):.2f} s vs ffmpeg {sum(theirs_all):.2f} s")
    report.section(f"4 video, per file ({reps} repetitions, medians)", "\n".join(detail))
