"""HDR (issue 13): what tone mapping, Ultra HDR gain maps and linear-light resizing cost.

- **9a tone mapping** on a PQ still (`10bit-HDR-P3-nclx.avif`, 3681x5594, 20 MP: libvips in
  pyvips-binary cannot write an AVIF with a PQ `nclx`, so no 12 MP one can be made from it) and
  two 1080p HDR videos (HDR10 HEVC made with Debian's ffmpeg from `hdr10-av1.mp4`, upscaled;
  the corpus's HLG phone clip). "job" is `LocalEngine.render` (three sizes, WebP Q80) in this
  process; "tone mapping" is `hdr_renditions` alone (PQ/HLG → light → BT.709 → BT.2390 → sRGB
  8-bit) on the picture the engine tone-maps: code values at the largest thumbnail's size.
  There is no engine switch to turn tone mapping off, so the ratio is the stage over the job
  without it (job − stage when the engine tone-maps, the job itself when it does not yet:
  then the row says so). Target ≤ 1.15×.
- **9b gain map**, on the 1080p HDR10 video (the smaller job, so the harder case for the
  gain map's fixed cost): every size written as JPEG Q80 from the same SDR thumbnail and HDR
  picture, `HDR_OUTPUT=gainmap` against `sdr` (`render_sizes`, the encode stage, info), and
  the engine's jobs with each (or the JPEG job plus the encode stage's difference where the
  engine does not pass the HDR picture on). Target ≤ 1.3× for the job.
- **9c RESIZE_LIGHT**: `linear` against `gamma`, engine jobs on corpus photos (info).
- **9d SDR jobs unchanged**: the same SDR photos and an SDR video rendered by this tree and by
  a `git worktree` of the commit before the HDR work, each in its own process (interleaved:
  before, after, after, before). Target: within noise (reported as a ratio, no verdict).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyvips

from bench.common import (
    MAX_PIXELS,
    MAX_VIDEO_SECONDS,
    REPO_ROOT,
    SIZES,
    WEBP_Q80,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    cpu_of,
    geomean,
    median,
    run_quietly,
    seconds,
)
from media_worker.config import ThumbnailFormat
from media_worker.engines.color.signal import HdrPicture, Signal, hdr_renditions
from media_worker.engines.encode import largest_box, render_sizes
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia

TONEMAP_TARGET = Target("<=", 1.15)
GAINMAP_TARGET = Target("<=", 1.3)
HDR_STILL = "images/formats/avif/10bit-HDR-P3-nclx.avif"
HDR10_SOURCE = "videos/hdr10-av1.mp4"
HLG_VIDEO = "videos/hlg10-color-test.mp4"
SDR_PHOTOS = ("images/camera/HMD_Nokia_8.3_5G.jpg", "images/camera/42_IndexError.jpg",
              "images/orientation/Landscape_6.jpg")
SDR_VIDEO = "videos/video-1080p-60fps-2s.mp4"
# 1898564 "HDR colour core (issue 13)" began the HDR work; this is the commit before it.
BEFORE_HDR = "fbc29ae"
JPEG_Q80 = OutputSpec(format=ThumbnailFormat.JPEG, quality=80)
GAINMAP_Q80 = OutputSpec(format=ThumbnailFormat.JPEG, quality=80, hdr_output="gainmap")
STILL_REPS = 3  # a 20 MP AVIF job takes over a second


def engine() -> LocalEngine:
    return LocalEngine(max_pixels=MAX_PIXELS, max_video_seconds=MAX_VIDEO_SECONDS)


def hdr_bench(inputs: Inputs, reps: int, report: Report) -> None:
    still = inputs.corpus_file(HDR_STILL)
    cases = [("PQ AVIF 20 MP (P3)", still, Signal(transfer="pq", primaries="p3"))]
    hdr10 = _hdr10_1080p(inputs)
    if hdr10 is not None:
        cases.append(("HDR10 HEVC 1080p", hdr10, Signal(transfer="pq", primaries="bt2020")))
    hlg = inputs.corpus_file(HLG_VIDEO)
    cases.append(("HLG HEVC 1080p (phone)", hlg, Signal(transfer="hlg", primaries="bt2020")))
    for name, path, signal in cases:
        _tonemap_row(report, name, path, signal, STILL_REPS if path == still else reps)
    # The smaller HDR job is the harder case for a fixed encode-stage cost: the 1080p video.
    name, path, signal = cases[1] if hdr10 is not None else cases[0]
    _gainmap_rows(report, name, path, signal, reps if path != still else STILL_REPS)
    _resize_light_rows(inputs, report, reps)
    _sdr_unchanged_rows(inputs, report, reps)


# --- 9a ------------------------------------------------------------------------------------
def _tonemap_row(report: Report, name: str, path: Path, signal: Signal, reps: int) -> None:
    source = SourceMedia(path, "bench", path.name)
    result = engine().render(source, SIZES, WEBP_Q80)  # warm-up, and does it tone-map?
    code = _code_values(path, result)
    hdr_renditions(code, signal)
    jobs, stages = [], []
    for _ in range(reps):
        jobs.append(cpu_of(lambda: engine().render(source, SIZES, WEBP_Q80)))
        stages.append(cpu_of(lambda: hdr_renditions(code, signal)))
    job, stage = median(jobs), median(stages)
    tone_maps = _tone_maps(result)
    without = job - stage if tone_maps else job
    verdict = "engine tone-maps: job − stage" if tone_maps else "engine does not tone-map yet"
    report.add(Row("9a tone mapping (CPU/job)",
                   f"{name}, {code.shape[1]}x{code.shape[0]} tone-mapped ({verdict})",
                   f"{seconds(without + stage)} with", f"{seconds(without)} without",
                   (without + stage) / without, TONEMAP_TARGET))
    report.note(f"9a {name}: tone mapping alone {seconds(stage)} "
                f"({stage / (code.shape[0] * code.shape[1]) * 1e9:.0f} ns/pixel)")


def _tone_maps(result: RenderResult) -> bool:
    hdr = result.metadata.get("hdr")
    return isinstance(hdr, dict) and hdr.get("transfer") in ("pq", "hlg")


def _code_values(path: Path, result: RenderResult) -> np.ndarray:
    """(H, W, 3) float32 code values 0..1 at the largest thumbnail's size."""
    width, height = result.metadata["width"], result.metadata["height"]
    box = largest_box(width, height, SIZES)
    if path.suffix.lower() == ".avif":
        image = pyvips.Image.new_from_file(str(path))  # 16-bit code values, no HDR handling
    else:
        image = _first_frame(path)
    image = image.thumbnail_image(box.width, height=box.height, size="down")
    scale = 65535.0 if image.format == "ushort" else 255.0
    return (image.numpy()[..., :3].astype(np.float32) / scale).copy()


def _first_frame(path: Path) -> pyvips.Image:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        pixels = frame.to_ndarray(format="rgb48le")
    return pyvips.Image.new_from_array(pixels, interpretation="rgb16")


def _hdr10_1080p(inputs: Inputs) -> Path | None:
    """A 2 s 1080x1920 HDR10 HEVC (PQ, BT.2020) made from the corpus's 720p AV1 one."""
    out = inputs.workdir / "hdr10-1080p.mp4"
    if out.exists():
        return out
    if shutil.which("ffmpeg") is None:
        return None
    run_quietly(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i",
                 str(inputs.corpus_file(HDR10_SOURCE)), "-t", "2", "-an",
                 "-vf", "scale=1080:1920:flags=lanczos", "-c:v", "libx265", "-preset", "ultrafast",
                 "-pix_fmt", "yuv420p10le",
                 "-x265-params", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
                 "log-level=error", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
                 "-colorspace", "bt2020nc", "-tag:v", "hvc1", str(out)])
    return out


# --- 9b ------------------------------------------------------------------------------------
def _gainmap_rows(report: Report, name: str, path: Path, signal: Signal, reps: int) -> None:
    source = SourceMedia(path, "bench", path.name)
    result = engine().render(source, SIZES, GAINMAP_Q80)  # warm-up; does the engine map?
    engine_maps = b"urn:iso:std:iso:ts:21496" in result.thumbnails[-1].data
    code = _code_values(path, result)
    sdr, hdr = hdr_renditions(code, signal)
    largest = pyvips.Image.new_from_array(sdr, interpretation="srgb")

    def encodes(output: OutputSpec, picture: HdrPicture) -> Callable[[], object]:
        return lambda: render_sizes(largest, SIZES, output, hdr=picture)

    plain, mapped, job_plain, job_mapped = [], [], [], []
    for _ in range(reps):
        plain.append(cpu_of(encodes(JPEG_Q80, hdr)))
        mapped.append(cpu_of(encodes(GAINMAP_Q80, hdr)))
        job_plain.append(cpu_of(lambda: engine().render(source, SIZES, JPEG_Q80)))
        if engine_maps:
            job_mapped.append(cpu_of(lambda: engine().render(source, SIZES, GAINMAP_Q80)))
    encode_sdr, encode_map = median(plain), median(mapped)
    report.add(Row("9b gainmap output (CPU)",
                   f"encode every size as JPEG Q80, {largest.width}x{largest.height} largest",
                   f"{seconds(encode_map)} gainmap", f"{seconds(encode_sdr)} sdr",
                   encode_map / encode_sdr))
    sdr_job = median(job_plain)
    if engine_maps:
        job, how = median(job_mapped), "the engine's gainmap jobs"
    else:
        job, how = sdr_job + encode_map - encode_sdr, "the JPEG job + the encode difference"
    report.add(Row("9b gainmap output (CPU/job)", f"{name}, JPEG Q80 ({how})",
                   f"{seconds(job)} gainmap", f"{seconds(sdr_job)} sdr", job / sdr_job,
                   GAINMAP_TARGET))
    sizes = [len(t.data) for t in render_sizes(largest, SIZES, GAINMAP_Q80, hdr=hdr)]
    plain_sizes = [len(t.data) for t in render_sizes(largest, SIZES, JPEG_Q80, hdr=hdr)]
    report.note("9b bytes per size, gainmap / sdr: " + ", ".join(
        f"{size.name} {a / 1024:.0f}/{b / 1024:.0f} KiB"
        for size, a, b in zip(SIZES, sizes, plain_sizes, strict=True)))


# --- 9c ------------------------------------------------------------------------------------
def _resize_light_rows(inputs: Inputs, report: Report, reps: int) -> None:
    linear = OutputSpec(format=ThumbnailFormat.WEBP, quality=80, resize_light="linear")
    files = [inputs.corpus_file(path) for path in SDR_PHOTOS]
    gamma_cpu: dict[Path, list[float]] = {path: [] for path in files}
    linear_cpu: dict[Path, list[float]] = {path: [] for path in files}
    for path in files:
        engine().render(SourceMedia(path, "bench", path.name), SIZES, linear)
    for _ in range(reps):
        for path in files:
            source = SourceMedia(path, "bench", path.name)
            gamma_cpu[path].append(cpu_of(partial(engine().render, source, SIZES, WEBP_Q80)))
            linear_cpu[path].append(cpu_of(partial(engine().render, source, SIZES, linear)))
    gammas = [median(gamma_cpu[path]) for path in files]
    linears = [median(linear_cpu[path]) for path in files]
    report.add(Row("9c RESIZE_LIGHT (CPU/photo, info)",
                   f"linear vs gamma, {len(files)} corpus JPEGs (geomean)",
                   f"{seconds(geomean(linears))} linear", f"{seconds(geomean(gammas))} gamma",
                   geomean(linears) / geomean(gammas)))


# --- 9d ------------------------------------------------------------------------------------
CHILD = """
import json, resource, sys
import pyvips
pyvips.cache_set_max(0)
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

reps, files = int(sys.argv[1]), sys.argv[2:]
sizes = [ThumbnailSize.parse(t) for t in ("small:150x150", "medium:480x480", "large:1280x1280")]
engine = LocalEngine(max_pixels=10**8, max_video_seconds=14400)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
samples = {path: [] for path in files}
for path in files:
    engine.render(SourceMedia(__import__("pathlib").Path(path), "b", "k"), sizes, OutputSpec())
for _ in range(reps):
    for path in files:
        source = SourceMedia(__import__("pathlib").Path(path), "b", "k")
        before = cpu()
        engine.render(source, sizes, OutputSpec())
        samples[path].append(cpu() - before)
print(json.dumps(samples))
"""


def _sdr_unchanged_rows(inputs: Inputs, report: Report, reps: int) -> None:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        raise Skip("9d needs git and this repository's history")
    files = [str(inputs.corpus_file(path)) for path in (*SDR_PHOTOS, SDR_VIDEO)]
    worktree = Path(tempfile.mkdtemp(prefix="mw-before-hdr-")) / "tree"
    run_quietly(["git", "worktree", "add", "--detach", str(worktree), BEFORE_HDR],
                cwd=REPO_ROOT)
    try:
        trees = {"before": worktree / "src", "after": REPO_ROOT / "src"}
        samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
        for side in ("before", "after", "after", "before"):
            env_path = f"{trees[side]}"
            output = run_quietly([sys.executable, "-c", CHILD, str(max(2, reps // 2 + 1)),
                                  *files], env=_child_env(env_path)).stdout
            for path, values in json.loads(output).items():
                samples[side].setdefault(path, []).extend(values)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO_ROOT,
                       capture_output=True, check=False)
        shutil.rmtree(worktree.parent, ignore_errors=True)
    ratios = []
    for path in files:
        before, after = median(samples["before"][path]), median(samples["after"][path])
        ratios.append(after / before)
        report.note(f"9d {Path(path).name}: {seconds(after)} now, {seconds(before)} "
                    f"before the HDR work ({after / before:.2f}×)")
    report.add(Row("9d SDR jobs (CPU/job)",
                   f"{len(files)} SDR files (3 JPEGs, a 1080p H.264), geomean",
                   "now", f"{BEFORE_HDR} (before HDR)", geomean(ratios)))


def _child_env(src: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = src  # before the venv's editable install of this tree
    return env
