"""Still images, one job at a time in this process: the engine against `vipsthumbnail` and a
naive Pillow pipeline (CPU seconds per photo), the encoder-settings sweep behind the defaults,
and the distance to the JPEG decoding limit (`tjbench -scale 1/8`).

The engine is `LocalEngine.render` called directly (no process pool), so `getrusage(SELF)`
counts exactly its work, libvips' threads included. The anchors run as child processes and are
counted with `getrusage(CHILDREN)`. Measurements are interleaved (ours, anchor, ours, …) so a
noisy neighbour slows both sides alike.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyvips
from PIL import Image, ImageOps
from pillow_heif import options as heif_options

from bench.batch import BatchSamples
from bench.common import (
    SIZES,
    WEBP_Q80,
    Inputs,
    Photo,
    Report,
    Row,
    Skip,
    Target,
    children_cpu_of,
    cpu_of,
    geomean,
    local_engine,
    median,
    seconds,
)
from media_worker.config import ThumbnailFormat
from media_worker.engines.encode import WEBP_EFFORT, fit, to_srgb8
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec

VIPS_TARGET = Target("<=", 0.8)
PILLOW_TARGET = Target("<=", 0.33)
LIMIT_TARGET = Target("<=", 1.5)
BATCH_MINIMUM = 26  # files per batch-mode pass: two of each photo in the full run
NAIVE_HEIF_DECODE_THREADS = 4  # pillow-heif's default
JPEG_Q80 = OutputSpec(format=ThumbnailFormat.JPEG, quality=80)


@cache
def engine() -> LocalEngine:
    return local_engine()


def ours(photo: Photo, output: OutputSpec = WEBP_Q80) -> float:
    """CPU seconds of one render of every size, in this process."""
    return cpu_of(lambda: engine().render(photo.source(), SIZES, output))


def vipsthumbnail_commands(photo: Photo, workdir: Path) -> list[list[str]]:
    """One `vipsthumbnail` per size: shrink only, ICC to sRGB, WebP Q80 without metadata."""
    return [["vipsthumbnail", str(photo.path), "--size", f"{size.width}x{size.height}>",
             "--export-profile", "srgb", "-o", f"{workdir}/vt-{size.name}.webp[Q=80,strip]"]
            for size in SIZES]


def naive_pillow(photo: Photo) -> float:
    """CPU seconds of what a first Pillow script does: per size, open, exif_transpose,
    thumbnail, save as WebP Q80."""

    def run() -> None:
        for size in SIZES:
            with Image.open(photo.path) as opened:
                upright = ImageOps.exif_transpose(opened)
                upright.thumbnail((size.width, size.height))
                upright.save(io.BytesIO(), "WEBP", quality=80)

    # pillow-heif's options are process-wide and the engine sets its own (one decode thread):
    # the naive script runs with the library's defaults, as it would on its own.
    ours = heif_options.DECODE_THREADS
    heif_options.DECODE_THREADS = NAIVE_HEIF_DECODE_THREADS
    try:
        return cpu_of(run)
    finally:
        heif_options.DECODE_THREADS = ours


# --- 1 and 2: CPU per photo -----------------------------------------------------------------
def photo_benches(inputs: Inputs, reps: int, report: Report, *, vips: bool, pillow: bool) -> None:
    if vips and shutil.which("vipsthumbnail") is None:
        report.note("1 vipsthumbnail: skipped, `vipsthumbnail` not installed "
                    "(apt-get install libvips-tools)")
        vips = False
    if not (vips or pillow):
        return
    from pillow_heif import register_heif_opener

    register_heif_opener()  # what anyone opening iPhone photos with Pillow does
    samples: dict[str, dict[Photo, list[float]]] = defaultdict(lambda: defaultdict(list))
    failed: dict[str, set[Photo]] = defaultdict(set)
    for photo in inputs.photos:  # warm-up: imports, first-use initialisation, disk cache
        ours(photo)
    # 1c: vipsthumbnail in batch mode (one process per size over every photo it can read;
    # Debian's libvips has no HEVC decoder), sampled once per repetition after the photos.
    batch = BatchSamples([photo for photo in inputs.photos
                          if photo.path.suffix.lower() != ".heic"],
                         inputs.workdir, minimum=BATCH_MINIMUM) if vips else None
    try:
        for _ in range(reps):
            for photo in inputs.photos:
                _sample_photo(photo, inputs.workdir, samples, failed, report, vips=vips,
                              pillow=pillow)
            if batch is not None:
                batch.sample()
    finally:
        if batch is not None:
            batch.close()
    if vips:
        _rows(report, "1 vs vipsthumbnail (CPU/photo)", inputs.photos,
              ours_cpu=samples["ours"], anchor_cpu=samples["vips"], target=VIPS_TARGET)
    if batch is not None:
        batch.rows(report, ours_cpu=samples["ours"], per_file_cpu=samples["vips"])
    if pillow:
        _rows(report, "2 vs naive Pillow (CPU/photo)", inputs.photos,
              ours_cpu=samples["ours"], anchor_cpu=samples["pillow"], target=PILLOW_TARGET)


def _sample_photo(photo: Photo, workdir: Path, samples: dict[str, dict[Photo, list[float]]],
                  failed: dict[str, set[Photo]], report: Report, *, vips: bool,
                  pillow: bool) -> None:
    """One repetition of one photo: ours, then each anchor."""
    samples["ours"][photo].append(ours(photo))
    if vips and photo not in failed["vips"]:
        try:
            commands = vipsthumbnail_commands(photo, workdir)
            samples["vips"][photo].append(children_cpu_of(commands))
        except RuntimeError as exc:
            failed["vips"].add(photo)
            report.note(f"1 vipsthumbnail cannot do {photo.name}: {exc}")
    if pillow:
        samples["pillow"][photo].append(naive_pillow(photo))


def _rows(report: Report, bench: str, photos: list[Photo], *, ours_cpu: dict[Photo, list[float]],
          anchor_cpu: dict[Photo, list[float]], target: Target) -> None:
    """One row per photo group (medians of the per-photo medians) and an overall row: the
    geometric mean of the per-photo ratios."""
    groups: dict[str, list[Photo]] = defaultdict(list)
    for photo in photos:
        if anchor_cpu.get(photo):
            groups[photo.group].append(photo)
    ratios = []
    for group, members in groups.items():
        mine = median(median(ours_cpu[photo]) for photo in members)
        theirs = median(median(anchor_cpu[photo]) for photo in members)
        ratios += [median(ours_cpu[p]) / median(anchor_cpu[p]) for p in members]
        report.add(Row(bench, f"{group} (n={len(members)})", seconds(mine), seconds(theirs),
                       mine / theirs, target))
    every = [photo for members in groups.values() for photo in members]
    if every:
        report.add(Row(bench, f"all photos (n={len(every)}, geomean of ratios)",
                       seconds(median(median(ours_cpu[p]) for p in every)),
                       seconds(median(median(anchor_cpu[p]) for p in every)),
                       geomean(ratios), target))


# --- 7: encoder settings --------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    name: str
    encode: Callable[[pyvips.Image], bytes]
    default: bool = False


KEEP_NONE = 0
SETTINGS = (
    *(Setting(f"webp Q80 effort {effort}",
              lambda im, e=effort: im.webpsave_buffer(Q=80, keep=KEEP_NONE, effort=e),
              default=effort == WEBP_EFFORT) for effort in (0, 1, 2, 4, 6)),
    Setting("jpeg Q80", lambda im: im.jpegsave_buffer(Q=80, keep=KEEP_NONE)),
    Setting("jpeg Q80 optimize_coding",
            lambda im: im.jpegsave_buffer(Q=80, keep=KEEP_NONE, optimize_coding=True),
            default=True),
    Setting("jpeg Q80 mozjpeg (trellis, scans, table 3)",
            lambda im: im.jpegsave_buffer(Q=80, keep=KEEP_NONE, optimize_coding=True,
                                          trellis_quant=True, overshoot_deringing=True,
                                          optimize_scans=True, quant_table=3)),
    *(Setting(f"avif Q80 effort {effort}",
              lambda im, e=effort: im.heifsave_buffer(Q=80, compression="av1",
                                                      keep=KEEP_NONE, effort=e),
              default=effort == 2) for effort in (0, 2, 4)),
)
SWEEP_PHOTOS = ("42_IndexError.jpg", "canon_hdr_NO.jpg", "HMD_Nokia_8.3_5G.jpg",
                "craft-beer.jpg", "IMG_5195.HEIC")


def encoder_sweep(inputs: Inputs, reps: int, report: Report) -> None:
    photos = [photo for photo in inputs.photos if photo.name in SWEEP_PHOTOS]
    if inputs.quick:
        photos = photos[:1]
    # CPU seconds, bytes and PSNR per (size, setting), one value per photo (median of reps).
    cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    size_bytes: dict[tuple[str, str], list[int]] = defaultdict(list)
    psnr: dict[tuple[str, str], list[float]] = defaultdict(list)
    for photo in photos:
        base = _base_image(photo)
        for size in SIZES:
            fitted = fit(base, size).copy_memory()
            for setting in SETTINGS:
                if inputs.quick and setting.name == "avif Q80 effort 4":
                    continue  # seconds per encode: full run only
                key = (size.name, setting.name)
                out: list[bytes] = []
                warm = cpu_of(lambda s=setting, f=fitted, o=out: o.append(s.encode(f)))
                data = out[0]
                if warm < 0.5:
                    samples = [cpu_of(lambda s=setting, f=fitted: s.encode(f))
                               for _ in range(reps)]
                else:  # seconds per encode (AVIF effort 4 at 1280): the warm-up counts
                    samples = [warm, *(cpu_of(lambda s=setting, f=fitted: s.encode(f))
                                       for _ in range(0 if inputs.quick else 2))]
                cpu[key].append(median(samples))
                size_bytes[key].append(len(data))
                psnr[key].append(_psnr(fitted, data))
    lines = ["| size | setting | CPU ms (median) | bytes (median) | PSNR dB (median) |",
             "|---|---|---:|---:|---:|"]
    for size in SIZES:
        for setting in SETTINGS:
            key = (size.name, setting.name)
            if key not in cpu:
                continue
            mark = " **(default)**" if setting.default else ""
            lines.append(f"| {size.name} {size.width} | {setting.name}{mark} | "
                         f"{median(cpu[key]) * 1000:.1f} | {median(size_bytes[key]):.0f} | "
                         f"{median(psnr[key]):.1f} |")
    names = ", ".join(photo.name for photo in photos)
    report.section(f"7 encoder settings ({len(photos)} photos: {names}; {reps} repetitions, "
                   "3 (quick: 1) for encodes over 0.5 s; CPU of one encode, libvips Q80, metadata "
                   "stripped; PSNR against the resized picture)",
                   "\n".join(lines))


def _base_image(photo: Photo) -> pyvips.Image:
    """The picture the engine encodes from: fitted to the largest box, 8-bit sRGB, in memory."""
    if photo.path.suffix.lower() == ".heic":
        with Image.open(photo.path) as opened:
            opened.thumbnail((1280, 1280))
            rgb = opened.convert("RGB")
        image = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, 3, "uchar")
        return image.copy(interpretation="srgb")
    large = pyvips.Image.thumbnail(str(photo.path), 1280, height=1280, size="down",
                                   export_profile="srgb")
    return to_srgb8(large).copy_memory()


def _psnr(reference: pyvips.Image, data: bytes) -> float:
    decoded = pyvips.Image.new_from_buffer(data, "")
    if decoded.bands != reference.bands:
        decoded = decoded[: reference.bands] if decoded.bands > reference.bands else decoded
    mse = ((decoded.cast("float") - reference.cast("float")) ** 2).avg()
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


# --- distance to the JPEG decoding limit ----------------------------------------------------
def limit_bench(inputs: Inputs, reps: int, report: Report) -> None:
    """Engine CPU per JPEG (JPEG output) as a multiple of `tjbench FILE -scale 1/8`: the cost
    of decoding the file at the smallest DCT scale, which no JPEG thumbnailer can beat. A
    second row compares with tjbench at the DCT scale the largest size (1280) really needs
    (a 4032 px photo must be decoded at 1/2 to make a 1280 px thumbnail, not at 1/8)."""
    if shutil.which("tjbench") is None:
        raise Skip("`tjbench` not installed (apt-get install libjpeg-turbo-progs)")
    photos = [photo for photo in inputs.photos if photo.path.suffix.lower() == ".jpg"]
    mine_all: list[float] = []
    theirs_all: dict[str, list[float]] = {"1/8": [], "needed": []}
    ratios: dict[str, list[float]] = {"1/8": [], "needed": []}
    for photo in photos:
        needed = f"1/{_needed_shrink(photo)}"
        ours(photo, JPEG_Q80)
        mine, theirs = [], {"1/8": [], "needed": []}
        for _ in range(reps):
            mine.append(ours(photo, JPEG_Q80))
            theirs["1/8"].append(_tjbench_seconds(photo.path, inputs.workdir, "1/8"))
            if not inputs.quick:
                theirs["needed"].append(_tjbench_seconds(photo.path, inputs.workdir, needed))
        mine_all.append(median(mine))
        for key, values in theirs.items():
            if values:
                theirs_all[key].append(median(values))
                ratios[key].append(median(mine) / median(values))
    count = f"all JPEGs (n={len(photos)}, geomean of ratios)"
    report.add(Row("8 vs tjbench -scale 1/8 (CPU/JPEG, JPEG out)", count,
                   seconds(median(mine_all)), seconds(median(theirs_all["1/8"])),
                   geomean(ratios["1/8"]), LIMIT_TARGET))
    if ratios["needed"]:  # full run only
        report.add(Row("8b vs tjbench at the scale 1280 px needs (info)", count,
                       seconds(median(mine_all)), seconds(median(theirs_all["needed"])),
                       geomean(ratios["needed"])))


def _needed_shrink(photo: Photo) -> int:
    """The largest JPEG DCT shrink (8, 4, 2 or 1) that still leaves the largest thumbnail's
    pixels: what a decoder must do at the least."""
    largest = SIZES[-1]
    scale = min(largest.width / photo.width, largest.height / photo.height, 1.0)
    shrink = 8
    while shrink > 1 and 1 / shrink < scale:
        shrink //= 2
    return shrink


def _tjbench_seconds(path: Path, workdir: Path, scale: str) -> float:
    result = subprocess.run(["tjbench", str(path), "-scale", scale, "-nowrite",
                             "-benchtime", "0.5", "-warmup", "0.1"],
                            capture_output=True, text=True, check=True, cwd=workdir)
    for line in result.stdout.splitlines():
        if "Decompress" in line and "Frame rate" in line:
            return 1 / float(line.split(":")[-1].split()[0])
    raise RuntimeError(f"unexpected tjbench output: {result.stdout[-300:]}")
