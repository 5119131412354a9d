"""Bench 10 (`--only crops`): `cover` and `smart` sizes against `fit` sizes of the same box.

- **10a cover vs fit**: the engine's CPU per job on the bench photos, a job of
  `small:150x150` plus one 1200x630 (or 256x256) box as `fit`, then as `cover` (with a
  focus). Target ≤ 1.1×: one decode per job stays the rule, the crop is a window of it.
- **10b smart vs fit**: the same with the box as `smart`: libvips attention and the face
  detector run once per job on a 480 px copy. Target ≤ 1.1×.
- **10c the interest alone**: `interest_of` (attention + faces) and the face detector alone on
  the decoded picture of each photo (info: the fixed cost of a job with a `smart` size;
  the first call also loads OpenCV's cascade, reported apart).

Medians of CPU seconds over the repetitions, interleaved (fit, cover, smart, fit, …) so that
load from other processes weighs on every variant alike.
"""

from __future__ import annotations

import time

import pyvips

from bench.common import (
    MAX_PIXELS,
    MAX_VIDEO_SECONDS,
    Inputs,
    Report,
    Row,
    Target,
    cpu_of,
    geomean,
    median,
    seconds,
)
from media_worker.engines.encode import interest_of
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

CROP_TARGET = Target("<=", 1.1)
BOXES = ("1200x630", "256x256")
MODES = ("fit", "cover", "smart")
FOCUS = Focus(0.3, 0.4)


def crops_bench(inputs: Inputs, reps: int, report: Report) -> None:
    engine = LocalEngine(max_pixels=MAX_PIXELS, max_video_seconds=MAX_VIDEO_SECONDS)
    output = OutputSpec()
    photos = inputs.photos
    for box in BOXES:
        jobs = {mode: ThumbnailSize.parse_list(
            f"small:150x150,box:{box}" + ("" if mode == "fit" else f":{mode}"))
            for mode in MODES}
        ratios: dict[str, list[float]] = {"cover": [], "smart": []}
        for photo in photos:
            source = SourceMedia(photo.path, "bench", photo.name, FOCUS)
            for sizes in jobs.values():  # warm-up: caches, OpenCV's cascade
                engine.render(source, sizes, output)
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(reps):
                for mode in MODES:
                    times[mode].append(cpu_of(lambda s=jobs[mode], src=source: engine.render(
                        src, s, output)))
            fit = median(times["fit"])
            for mode in ("cover", "smart"):
                ratios[mode].append(median(times[mode]) / fit)
            report.note(f"10 {box} {photo.name} ({photo.megapixels:.1f} MP): fit "
                        f"{seconds(fit)}, cover {seconds(median(times['cover']))}, smart "
                        f"{seconds(median(times['smart']))}")
        for label, mode in (("10a cover vs fit (CPU/job)", "cover"),
                            ("10b smart vs fit (CPU/job)", "smart")):
            report.add(Row(label, f"{box} + 150x150, {len(photos)} photos (geomean)",
                           mode, "fit", geomean(ratios[mode]), CROP_TARGET))
    _interest_rows(photos, report)


def _interest_rows(photos: list, report: Report) -> None:
    from media_worker.engines.encode import INTEREST_PIXELS, _faces

    started = time.process_time()
    from media_worker.engines import faces

    faces._cascade.cache_clear()
    faces._cascade()
    report.note(f"10c loading OpenCV and its cascade: {seconds(time.process_time() - started)}"
                " CPU, once per decoder process")
    whole, detector = [], []
    for photo in photos:
        try:
            decoded = pyvips.Image.thumbnail(str(photo.path), 1200)[:3].copy_memory()
        except pyvips.Error:  # HEIC: no HEVC decoder in libvips here (the engine uses Pillow)
            continue
        small = decoded.thumbnail_image(
            round((INTEREST_PIXELS * decoded.width / decoded.height) ** 0.5)).copy_memory()
        whole.append(median(cpu_of(lambda d=decoded: interest_of(d)) for _ in range(5)))
        detector.append(median(cpu_of(lambda s=small: _faces(s)) for _ in range(5)))
    report.add(Row("10c interest per smart job (CPU)", f"{len(photos)} photos, 1200 px decode",
                   f"{seconds(median(whole))} attention+faces",
                   f"{seconds(median(detector))} faces alone"))
