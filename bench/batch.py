"""1c and 1d: `vipsthumbnail` at its best, in batch mode.

Bench 1 runs one `vipsthumbnail` per file and size, so the anchor pays a process start-up
(libvips' initialisation, loading its modules) three times per photo. A user converting a
folder would instead run it once per size over every file:

    vipsthumbnail a.jpg b.jpg … --size 1280x1280> --export-profile srgb -o out/%s-large.webp[…]

and, on two cores, two of those batches at a time. Here:

- **1c CPU per photo**: the three batches (one per size) over every photo vipsthumbnail can
  read, CPU = `getrusage(CHILDREN)` / photos, against ours in process (bench 1's samples);
  printed beside bench 1's per-file ratio computed the same way (mean per photo).
- **1c wall on two cores**: the worker's IsolatedEngine (two decoders fed by two threads) over
  the same files, against two ways of batching, two processes at a time: the three batches
  (the third runs alone at the end, one core idle), and each size's batch split in two equal
  shares (six batches: both cores busy to the end, the anchor at its best).
- **1d the whole pipeline against batch mode**: N photos through `media-worker enqueue` and
  `media-worker run --drain` on moto S3+SQS + PostgreSQL (bench 5's set-up), timed two ways:
  from the first job's receive to the last `READY` (the `ready` events' timestamps less their
  `seconds`), and the worker process' wall time including its start-up and the drain tail;
  against the six balanced batches' wall time on the same N files, run just before and just
  after the pipeline (the mean is the reference). A third row compares with the anchor's CPU
  / 2 cores, the wall time it would take on two idle cores: on a shared machine the two wall
  times can be hit by other processes unequally, and the note says how much CPU they took
  during each.

Every file in a batch is a distinct name (a symbolic link per job), so neither libvips'
operation cache nor the output names ever let one file stand in for another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CORES,
    SIZES,
    WEBP_Q80,
    Inputs,
    Photo,
    Report,
    Row,
    Target,
    children_cpu,
    isolated_engine,
    median,
    run_concurrently,
    run_quietly,
    seconds,
    self_cpu,
)
from bench.pipeline import Services, deployment, machine_busy, run_worker
from media_worker.engines.port import SourceMedia

VIPS_TARGET = Target("<=", 0.8)


def batch_files(files: list[Path], directory: Path, count: int) -> list[Path]:
    """`count` distinct names cycling through `files`: one symbolic link per job."""
    directory.mkdir(parents=True, exist_ok=True)
    links = []
    for index in range(count):
        source = files[index % len(files)]
        link = directory / f"{index:05d}-{source.name}"
        if not link.exists():
            link.symlink_to(source)
        links.append(link)
    return links


def batch_commands(files: list[Path], outdir: Path, split: int = 1) -> list[list[str]]:
    """One `vipsthumbnail` per size over every file (`split` 1), or per size and per
    `split`-th of the files (every `split`-th file: equal shares of the mix), largest size
    first: it runs longest, so a pool of two ends as evenly as the batches allow."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [["vipsthumbnail", *map(str, files[part::split]),
             "--size", f"{size.width}x{size.height}>", "--export-profile", "srgb",
             "-o", f"{outdir}/%s-{size.name}.webp[Q=80,strip]"]
            for size in reversed(SIZES) for part in range(split)]


@dataclass(frozen=True)
class BatchRun:
    wall: float  # seconds
    cpu: float  # CPU seconds of the vipsthumbnail processes
    others: float  # CPU seconds every other process of the machine used meanwhile


def balanced_batches(files: list[Path], outdir: Path) -> BatchRun:
    """Batch mode at its best on `CORES` cores: each size's batch split in `CORES` equal
    shares, `CORES` at a time, so every core stays busy to the end (three batches on two
    cores leave one idle while the third runs; 1c measures both ways)."""
    return run_batches(batch_commands(files, outdir, CORES))


def run_batches(commands: list[list[str]], parallel: int = CORES) -> BatchRun:
    """Run `commands`, `parallel` at a time."""
    cpu, busy, own = children_cpu(), machine_busy(), self_cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(run_quietly, commands))
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    return BatchRun(wall, cpu, max(0.0, machine_busy() - busy - cpu - (self_cpu() - own)))


class BatchSamples:
    """Bench 1's batch-mode anchor, sampled once per repetition beside the per-file one."""

    def __init__(self, photos: list[Photo], workdir: Path, *, minimum: int) -> None:
        self.photos = photos
        count = max(minimum, len(photos))
        count -= count % len(photos)  # whole passes: every photo weighs the same
        self.files = batch_files([photo.path for photo in photos], workdir / "batch-in", count)
        self.outdir = workdir / "batch-out"
        self.cpu: list[float] = []  # per photo, one batch per size over all files
        self.wall: dict[str, list[float]] = {}  # per way of batching
        self.ours_wall: list[float] = []
        self._engine = isolated_engine(CORES)
        warm = [self._task(path) for path in self.files[:2 * CORES]]
        run_concurrently(warm, CORES)  # decoders spawned and warm before anything is timed

    def _task(self, path: Path) -> Callable[[], object]:
        return lambda: self._engine.render(SourceMedia(path, "bench", path.name), SIZES,
                                           WEBP_Q80)

    def sample(self) -> None:
        """One repetition: the anchor's batches, then ours over the same files."""
        whole = run_batches(batch_commands(self.files, self.outdir))
        self.wall.setdefault("3 batches", []).append(whole.wall)
        self.cpu.append(whole.cpu / len(self.files))
        split = run_batches(batch_commands(self.files, self.outdir, CORES))
        self.wall.setdefault(f"{3 * CORES} batches", []).append(split.wall)
        start = time.perf_counter()
        finished = run_concurrently([self._task(path) for path in self.files], CORES)
        self.ours_wall.append(max(finished) - start)

    def close(self) -> None:
        self._engine.close()

    def rows(self, report: Report, *, ours_cpu: dict[Photo, list[float]],
             per_file_cpu: dict[Photo, list[float]]) -> None:
        """Batch-mode rows beside bench 1's: CPU per photo (mean over the photos, as a batch
        can only be measured whole) and wall time on two cores."""
        photos = [photo for photo in self.photos if per_file_cpu.get(photo)]
        mine = sum(median(ours_cpu[photo]) for photo in photos) / len(photos)
        per_file = sum(median(per_file_cpu[photo]) for photo in photos) / len(photos)
        batch = median(self.cpu)
        n = len(photos)
        report.add(Row("1 vs vipsthumbnail per file (CPU/photo, mean)",
                       f"all photos (n={n}): 3 processes per photo", seconds(mine),
                       seconds(per_file), mine / per_file, VIPS_TARGET))
        report.add(Row("1c vs vipsthumbnail batch mode (CPU/photo, mean)",
                       f"all photos (n={n}), {len(self.files)} files: one process per size "
                       f"over all, {CORES} at a time", seconds(mine), seconds(batch),
                       mine / batch, VIPS_TARGET))
        ours_wall = median(self.ours_wall)
        for mode, walls in self.wall.items():
            how = (f"one per size, {CORES} at a time" if mode == "3 batches" else
                   f"one per size and {CORES}-way share of the files, {CORES} at a time")
            report.add(Row(f"1c vs vipsthumbnail batch mode (wall, {CORES} cores)",
                           f"{len(self.files)} files: IsolatedEngine {CORES} decoders vs "
                           f"{mode} ({how})", seconds(ours_wall), seconds(median(walls)),
                           ours_wall / median(walls)))
        walls = "; ".join(f"{mode} {', '.join(f'{w:.2f}' for w in values)} s"
                          for mode, values in self.wall.items())
        report.note(f"1c vipsthumbnail batch mode: per-file {mine / per_file:.2f}× → batch "
                    f"{mine / batch:.2f}× in CPU per photo (the anchor saves "
                    f"{1 - batch / per_file:.0%} of its CPU without the start-ups); wall per "
                    f"repetition: {walls}; ours "
                    f"{', '.join(f'{w:.2f}' for w in self.ours_wall)} s")


# --- 1d the pipeline against batch mode -----------------------------------------------------
def pipeline_vs_batch(inputs: Inputs, report: Report, svc: Services, *, jobs: int,
                      concurrencies: tuple[int, ...]) -> None:
    """The whole pipeline on `jobs` photos against vipsthumbnail's batches on the same files."""
    photos = [photo.path for photo in inputs.photos if photo.path.suffix.lower() != ".heic"]
    files = batch_files(photos, inputs.workdir / "pipeline-batch-in", jobs)
    outdir = inputs.workdir / "pipeline-batch-out"
    for concurrency in concurrencies:
        before = balanced_batches(files, outdir)
        with deployment(svc, inputs.workdir, inputs.worker_env) as deployed:
            run = run_worker(deployed, svc, files, concurrency,
                             inputs.workdir / f"worker-batch-c{concurrency}.log",
                             sample_interval=0.25)
            first_receive = _first_receive(run.ready_times, run.latencies)
        after = before if inputs.quick else balanced_batches(files, outdir)
        anchor = (before.wall + after.wall) / 2
        # The anchor on two otherwise idle cores, perfectly parallel: its CPU / cores.
        floor = (before.cpu + after.cpu) / 2 / CORES
        if run.outcomes["ready"] != jobs:
            report.note(f"1d c={concurrency}: outcomes {dict(run.outcomes)} of {jobs} jobs")
        busy = max(run.ready_times) - first_receive
        case = (f"{jobs} photos, moto S3+SQS + PostgreSQL, concurrency {concurrency}; "
                f"anchor: {3 * CORES} batches, {CORES} at a time")
        report.add(Row("1d pipeline vs vipsthumbnail batch (wall)",
                       f"{case}: first job received → last READY", seconds(busy),
                       seconds(anchor), busy / anchor))
        report.add(Row("1d pipeline vs vipsthumbnail batch (wall)",
                       f"{case}: worker process, start-up and drain tail included",
                       seconds(run.wall), seconds(anchor), run.wall / anchor))
        report.add(Row("1d pipeline vs vipsthumbnail batch (info)",
                       f"first job → last READY against the anchor's CPU / {CORES} cores "
                       "(its wall on idle cores, perfectly parallel)", seconds(busy),
                       seconds(floor), busy / floor))
        pipeline_cpu = run.cpu + run.moto_cpu + run.postgres_cpu
        report.add(Row("1d pipeline vs vipsthumbnail batch (CPU, info)",
                       f"{jobs} photos: worker + moto + PostgreSQL against the batches' CPU "
                       "(what load from other processes cannot move)",
                       f"{pipeline_cpu:.1f} s", f"{(before.cpu + after.cpu) / 2:.1f} s",
                       pipeline_cpu / ((before.cpu + after.cpu) / 2)))
        modes = (f"{before.wall:.2f}/{after.wall:.2f} s ({before.cpu:.1f}/{after.cpu:.1f} s "
                 f"CPU; other processes {before.others:.1f}/{after.others:.1f} s)")
        others = max(0.0, run.machine_cpu - run.cpu - run.moto_cpu - run.postgres_cpu)
        report.note(f"1d c={concurrency}: vipsthumbnail before/after the pipeline: {modes}; "
                    f"pipeline: other processes {others:.1f} s CPU; "
                    f"worker start-up to first receive "
                    f"{first_receive - run.started_at:.2f} s, last READY to exit "
                    f"{run.started_at + run.wall - max(run.ready_times):.2f} s; worker "
                    f"{run.cpu:.1f} s CPU, moto {run.moto_cpu:.1f} s, PostgreSQL "
                    f"{run.postgres_cpu:.1f} s")


def _first_receive(ready_times: list[float], latencies: list[float]) -> float:
    """When the first job was received: each `ready` event's time less its `seconds`."""
    return min(at - took for at, took in zip(ready_times, latencies, strict=True))

