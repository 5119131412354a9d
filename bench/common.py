"""What every benchmark shares: the inputs, the sizes, clocks, statistics and the result table.

Inputs are real files of the shared corpus (read through its MANIFEST.tsv) plus two larger
photos made by upscaling a real one to 12 and 24 megapixels with libvips; those are written to
a temporary directory that is removed at the end of the run, never into the repository.
"""

from __future__ import annotations

import csv
import math
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tests.conftest import CORPUS, POSTGRES_ADMIN_URL, REPO_ROOT, free_port  # noqa: F401

from media_worker.config import Settings, ThumbnailFormat
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

if TYPE_CHECKING:
    from media_worker.engines.local import LocalEngine

T = TypeVar("T")
SIZES = [ThumbnailSize.parse(text) for text in ("small:150x150", "medium:480x480",
                                                "large:1280x1280")]
LARGE = [SIZES[-1]]
WEBP_Q80 = OutputSpec(format=ThumbnailFormat.WEBP, quality=80)
MAX_PIXELS = int(Settings.model_fields["max_pixels"].default)
MAX_VIDEO_SECONDS = float(Settings.model_fields["max_video_seconds"].default)
CORES = os.cpu_count() or 1
THUMBOR_VENV = REPO_ROOT / ".venv-thumbor"

# Real photos of the corpus, by the group they are reported in. Small web images, malformed
# files and format curiosities are left out: these are what people upload from cameras/phones.
PHOTO_GROUPS: dict[str, tuple[str, ...]] = {
    "JPEG <1 MP": ("images/camera/prairie_falcon.jpg", "images/camera/DSCN0010.jpg"),
    "JPEG 2-3 MP": ("images/orientation/Landscape_6.jpg", "images/orientation/Portrait_8.jpg",
                    "images/camera/canon_hdr_NO.jpg"),
    "JPEG 8-16 MP": ("images/camera/iphone_hdr_YES.jpg", "images/camera/HMD_Nokia_8.3_5G.jpg",
                     "images/camera/42_IndexError.jpg", "images/camera/ultraHDR.jpg",
                     "images/camera/empty_gps.jpg"),
    "JPEG 24 MP progressive": ("images/formats/jpeg/craft-beer.jpg",),
    "HEIC 8-12 MP": ("images/formats/heic/IMG_5195.HEIC",
                     "images/formats/heic/iphone_13_pro_max.HEIC"),
}
QUICK_PHOTOS = ("images/camera/42_IndexError.jpg", "images/camera/canon_hdr_NO.jpg")
UPSCALE_SOURCE = "images/camera/iphone_hdr_YES.jpg"  # 3264x2448, a real phone photo
UPSCALED = {"JPEG 12 MP upscaled": 12e6, "JPEG 24 MP upscaled": 24e6}
QUICK_VIDEOS = ("videos/video-1080p-60fps-2s.mp4", "videos/Big_Buck_Bunny_180_10s.webm",
                "videos/portrait_4k60.mp4", "videos/sample_av1.mp4")
BOMBS = ("images/malformed/png_decompression_dos.png", "images/malformed/decompression_bomb.gif",
         "images/malformed/decompression_bomb_extents.gif",
         "images/malformed/vp8l-16383x16383.webp", "images/malformed/65536-uint32-limit.png",
         "images/malformed/giant-image.jpg", "images/malformed/reallybig.bmp")


class Skip(Exception):  # noqa: N818 - a benchmark that cannot run here, with the reason
    """Raised by a benchmark whose anchor or input is missing; the message says what."""


@dataclass(frozen=True)
class Photo:
    path: Path
    group: str
    width: int
    height: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def source(self) -> SourceMedia:
        return SourceMedia(self.path, "bench", self.path.name)


@dataclass
class Inputs:
    """The files of one run. `quick` picks a small subset of the same files."""

    quick: bool
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mw-bench-")))
    # Worker settings given with --env (e.g. DECODE_MEMORY_MB=96): the test harness drops
    # inherited worker variables, so they are passed to every worker this run starts.
    worker_env: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    @cached_property
    def manifest(self) -> dict[str, dict[str, str]]:
        manifest = CORPUS / "MANIFEST.tsv"
        if not manifest.is_file():
            raise Skip(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)")
        with manifest.open(newline="") as handle:
            return {row["path"]: row for row in csv.DictReader(handle, delimiter="\t")}

    def corpus_file(self, relative: str) -> Path:
        if relative not in self.manifest or not (CORPUS / relative).is_file():
            raise Skip(f"{relative} is missing from the corpus at {CORPUS}")
        return CORPUS / relative

    @cached_property
    def photos(self) -> list[Photo]:
        """Corpus photos then the upscaled ones; in quick mode two corpus photos and 24 MP."""
        photos = []
        for group, paths in PHOTO_GROUPS.items():
            for relative in paths:
                if self.quick and relative not in QUICK_PHOTOS:
                    continue
                photos.append(_photo(self.corpus_file(relative), group))
        for group, pixels in UPSCALED.items():
            if self.quick and pixels < 20e6:
                continue
            photos.append(_photo(self._upscaled(pixels), group))
        return photos

    def _upscaled(self, pixels: float) -> Path:
        import pyvips

        out = self.workdir / f"upscaled-{round(pixels / 1e6)}mp.jpg"
        if not out.exists():
            source = pyvips.Image.new_from_file(str(self.corpus_file(UPSCALE_SOURCE)))
            scale = math.sqrt(pixels / (source.width * source.height))
            # A camera-like baseline JPEG: quality 90, 4:2:0 chroma, EXIF kept.
            source.resize(scale, kernel="lanczos3").jpegsave(str(out), Q=90,
                                                             subsample_mode="on")
        return out

    @cached_property
    def videos(self) -> list[Path]:
        """Every top-level corpus video (the playable ones); quick mode: four of them."""
        found = [path for path in self.manifest
                 if path.startswith("videos/") and path.count("/") == 1]
        if self.quick:
            found = [path for path in found if path in QUICK_VIDEOS]
        return [self.corpus_file(path) for path in found]

    @cached_property
    def bombs(self) -> list[Path]:
        return [self.corpus_file(path) for path in BOMBS]

    @cached_property
    def pipeline_files(self) -> list[Path]:
        """What the end-to-end run cycles through: every corpus photo and two videos."""
        photos = [CORPUS / relative for paths in PHOTO_GROUPS.values() for relative in paths]
        videos = [CORPUS / "videos/sample.mp4", CORPUS / "videos/video-1080p-60fps-2s.mp4"]
        for path in [*photos, *videos]:
            self.corpus_file(str(path.relative_to(CORPUS)))
        return [*photos, *videos]


def _photo(path: Path, group: str) -> Photo:
    import pyvips

    header = pyvips.Image.new_from_file(str(path)) if path.suffix.lower() != ".heic" else None
    if header is None:  # libvips in pyvips-binary has no HEVC decoder: read the size with Pillow
        from PIL import Image
        from pillow_heif import register_heif_opener

        register_heif_opener()
        with Image.open(path) as opened:
            return Photo(path, group, *opened.size)
    return Photo(path, group, header.width, header.height)


# --- clocks -------------------------------------------------------------------------------
def self_cpu() -> float:
    """CPU seconds (user + system) of this process, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """CPU seconds of this process's finished and waited-for children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(action: Callable[[], object]) -> float:
    """CPU seconds this process spends running `action`."""
    before = self_cpu()
    action()
    return self_cpu() - before


def run_quietly(args: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """Run a command, raising with its stderr when it fails."""
    result = subprocess.run(list(args), capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()[-400:]}")
    return result


def children_cpu_of(args_list: Iterable[Sequence[str]], **kwargs: object) -> float:
    """CPU seconds of running each command in turn, as child processes."""
    before = children_cpu()
    for args in args_list:
        run_quietly(args, **kwargs)
    return children_cpu() - before


def wall_of(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) of running `action`."""
    cpu, start = self_cpu(), time.perf_counter()
    action()
    return time.perf_counter() - start, self_cpu() - cpu


def timed_command(args: Sequence[str], *, cwd: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of running a command-line tool (its process, start-up included);
    what it writes to stdout is thrown away, its stderr is the error when it fails."""
    cpu, start = children_cpu(), time.perf_counter()
    result = subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=cwd, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()[-400:]}")
    return wall, children_cpu() - cpu


# --- side by side -------------------------------------------------------------------------
@dataclass
class Timings:
    """Wall and CPU seconds of each run of one variant."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def interleaved(variants: Mapping[str, Callable[[], T]], reps: int, *,
                warm_up: bool = True) -> dict[str, list[T]]:
    """Each variant once to warm up (unless the caller did), then `reps` rounds of all of
    them in turn, so load from other processes weighs on every variant alike."""
    if warm_up:
        for measure in variants.values():
            measure()
    samples: dict[str, list[T]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, measure in variants.items():
            samples[name].append(measure())
    return samples


def interleaved_timings(variants: Mapping[str, Callable[[], tuple[float, float]]], reps: int,
                        *, warm_up: bool = True) -> dict[str, Timings]:
    """`interleaved` of variants that each return (wall, CPU) seconds of a run (`timed`,
    `timed_command`)."""
    return {name: Timings([wall for wall, _ in runs], [cpu for _, cpu in runs])
            for name, runs in interleaved(variants, reps, warm_up=warm_up).items()}


# --- statistics ---------------------------------------------------------------------------
def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def geomean(values: Iterable[float]) -> float:
    values = [value for value in values if value > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def steady_rate(finish_times: Sequence[float], concurrency: int) -> float:
    """Jobs per second from the `concurrency`-th completion to the last: what a long-running
    worker sustains, without its start-up (process spawn, imports, first connections)."""
    times = sorted(finish_times)
    skip = min(concurrency, len(times) - 2)
    if skip < 0 or times[-1] <= times[skip]:
        return math.nan
    return (len(times) - 1 - skip) / (times[-1] - times[skip])


# --- results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """`ratio <= value` (op "<=") or `ratio >= value` (op ">=")."""

    op: str
    value: float

    def met(self, ratio: float) -> bool:
        if math.isnan(ratio):
            return False
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.value:g}×"


@dataclass
class Row:
    bench: str
    case: str
    ours: str
    anchor: str
    ratio: float | None = None
    target: Target | None = None

    @property
    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        return "PASS" if self.target.met(self.ratio) else "MISS"

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}×"
        return [self.bench, self.case, self.ours, self.anchor, ratio,
                "" if self.target is None else str(self.target), self.verdict]


HEADER = ["bench", "case", "ours (median)", "anchor (median)", "ratio", "target", "verdict"]


@dataclass
class Report:
    """Rows of the final table, and notes printed under it."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print("  " + " | ".join(cell for cell in row.cells() if cell), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def section(self, title: str, markdown: str) -> None:
        """A table of its own (the encoder sweep), printed after the main table."""
        self.sections.append((title, markdown))
        print(f"\n  {title}\n{markdown}", flush=True)

    def table(self) -> str:
        cells = [HEADER, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                 for line in cells]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(row.cells()) + " |" for row in self.rows]
        return "\n".join(lines)


def seconds(value: float) -> str:
    """A duration, in ms below 1 s."""
    if math.isnan(value):
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def pass_of(items: Sequence[T], minimum: int) -> list[T]:
    """`items` repeated until there are at least `minimum`: a throughput pass long enough that
    the last job, running alone while the other clients are idle, weighs little."""
    copies = max(1, -(-minimum // max(1, len(items))))
    return list(items) * copies


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- engines ------------------------------------------------------------------------------
def local_engine() -> LocalEngine:
    """The worker's engine in this process, with the worker's default limits."""
    from media_worker.engines.local import LocalEngine

    return LocalEngine(max_pixels=MAX_PIXELS, max_video_seconds=MAX_VIDEO_SECONDS)


def isolated_engine(workers: int) -> object:
    """The worker's own engine, built by the worker's own code (`app.build_engine`): an
    IsolatedEngine process pool of `workers` LocalEngine children."""
    from media_worker.app import build_engine

    return build_engine(Settings(worker_concurrency=workers))


def run_concurrently(tasks: Sequence[Callable[[], object]], clients: int) -> list[float]:
    """Run `tasks` from `clients` threads taking the next task as they finish one; returns
    each task's completion time (perf_counter), in completion order."""
    import threading

    pending = list(reversed(tasks))
    lock = threading.Lock()
    finished: list[float] = []
    errors: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                task = pending.pop()
            try:
                task()
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                finished.append(time.perf_counter())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return finished
