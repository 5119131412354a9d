"""The benchmark command: `.venv/bin/python -m bench.run [--quick] [--only NAME ...]`.

Runs every benchmark in one process, side by side with its anchor on the same inputs, and
prints a table of medians, ratios and PASS/MISS against the targets of issue 5. A benchmark
whose anchor or input is missing is skipped with a message saying what to install.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyvips

import media_worker
from bench import (
    animation,
    batch,
    crops,
    documents,
    events,
    facts,
    hdr,
    images,
    pipeline,
    ranged_reads,
    thumbor,
    video,
    video_renditions,
)
from bench.common import CORES, CORPUS, THUMBOR_VENV, Inputs, Report, Skip, load_average
from media_worker.config import Settings

BENCHES = ("vips", "pillow", "limit", "encoders", "video", "ranged", "hdr", "crops", "thumbor",
           "animation", "clips", "concurrency", "events", "documents", "facts",
           "e2e", "batch", "memory", "soak")
# The soak runs for many minutes (5,000 jobs: about 13 here): only when asked (--only soak).
DEFAULT = tuple(name for name in BENCHES if name != "soak")
DESCRIPTIONS = {
    "vips": "1 engine vs vipsthumbnail, CPU s per photo (target <= 0.8x); 1c the same "
            "against vipsthumbnail in batch mode (one process per size over all photos)",
    "pillow": "2 engine vs naive Pillow, CPU s per photo (target <= 0.33x)",
    "thumbor": "3 engine vs Thumbor server, photos/s on 2 cores (target >= 3x)",
    "video": "4 video: time to frame vs ffmpeg -ss T (target <= 1.2x)",
    "ranged": "15 one video frame (open, seek to 10%, decode) read in place through S3 ranged "
              "reads vs downloaded whole, 10 MB-1 GB MP4s on SeaweedFS: bytes (target <= 2% or "
              "16 MB), wall time flat as the file grows; 15b whole video jobs, the storyboard "
              "of a 60-minute file (<= 5%); 15c storyboard keyframes prefetched vs fetched as "
              "read, with 0 and 20 ms added per GET (target <= 1x)",
    "hdr": "9 HDR: tone mapping's share of a PQ/HLG job (target <= 1.15x), gainmap vs sdr "
           "JPEG output (<= 1.3x), RESIZE_LIGHT linear vs gamma, SDR jobs before/after the "
           "HDR work",
    "crops": "10 cover and smart sizes vs fit of the same box, CPU per job (target <= 1.1x); "
             "the interest search (attention + faces) once per smart job",
    "animation": "16 animated GIF -> animated WebP, CPU per frame vs gif2webp and img2webp "
                 "(same size) and vipsthumbnail (160x160) (target <= 1x)",
    "clips": "17 video preview clips (WebP, MP4) and storyboards vs the equivalent ffmpeg "
             "command, wall time on the corpus videos and a 10-minute 1080p file (target "
             "<= 1.2x); the WebP clip encoder vs libvips webpsave",
    "e2e": "5 end to end via moto S3+SQS and PostgreSQL vs engine only (target >= 0.85x)",
    "batch": "1d the whole pipeline vs vipsthumbnail in batch mode, wall time on 2 cores",
    "memory": "6 peak RSS of a worker with concurrency 2 (target <= 300 MB)",
    "encoders": "7 encoder settings sweep: CPU and bytes per size",
    "limit": "8 engine CPU per JPEG vs tjbench -scale 1/8 (target <= 1.5x)",
    "concurrency": "VIPS_CONCURRENCY vs jobs in parallel (engine-only photos/s)",
    "events": "status events: worker CPU per job with NOTIFY, a webhook, SQS FIFO on moto, on "
              "PostgreSQL and SQLite, vs events off, 10 jobs/s (target <= 1 ms added)",
    "documents": "18 camera RAW and PDF: a DNG via its embedded preview vs a JPEG of the "
                 "preview (target <= 1.2x), demosaiced vs dcraw_emu -h (<= 1.2x), PDF page 1 "
                 "vs pdftoppm at the dpi drawn (<= 1x), wall time",
    "facts": "19 metadata, placeholders and pHash: CPU they add to a 12 MP JPEG job (target "
             "<= 5 ms); similar on 100,000 PostgreSQL rows (target <= 50 ms)",
    "soak": "N mixed jobs through 3 workers, one SIGKILLed every 30 s; lost, stuck, "
            "twice, throughput, RSS growth (not in the default set)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Side-by-side benchmarks of media-worker against its anchors.",
        epilog="benchmarks: " + "; ".join(f"{name}: {DESCRIPTIONS[name]}" for name in BENCHES))
    parser.add_argument("--quick", action="store_true",
                        help="fewer inputs (same repetitions): about 3 minutes")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only these (repeatable or comma-separated): "
                        + ", ".join(BENCHES) + " (default: all but soak)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per measurement (>= 5)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set in the environment of everything this run starts (worker, "
                             "engine pools, anchors), e.g. VIPS_CONCURRENCY=1")
    parser.add_argument("--e2e-concurrency", default="2", metavar="N[,N]",
                        help="worker concurrency of the end-to-end run(s); the first is judged")
    parser.add_argument("--soak-jobs", type=int, default=None, metavar="N",
                        help="jobs of the soak (--only soak; default 5000, --quick 300); "
                             "python -m bench.soak has every option of the soak")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    selected = _selected(parser, args.only)
    overrides = dict(item.partition("=")[::2] for item in args.env)
    os.environ.update(overrides)
    # Worker settings also go to the workers explicitly: the test harness drops inherited ones.
    worker_env = {key: value for key, value in overrides.items()
                  if key.lower() in Settings.model_fields}
    concurrencies = tuple(int(value) for value in args.e2e_concurrency.split(","))
    reps = args.reps
    jobs = 60 if args.quick else 200

    header = machine_header(args.quick, reps)
    print(header, flush=True)
    # The worker never renders the same scratch file twice, so libvips' operation cache never
    # hits there; off here too, or repeating a measurement would measure the cache.
    pyvips.cache_set_max(0)
    report = Report()
    inputs = Inputs(quick=args.quick, worker_env=worker_env)
    started = time.perf_counter()
    crashed = False
    try:
        steps = _steps(inputs, report, selected, reps=reps, jobs=jobs, quick=args.quick,
                       concurrencies=concurrencies)
        if "soak" in selected:
            soak_jobs = args.soak_jobs or (300 if args.quick else 5000)
            soak_args = ["--jobs", str(soak_jobs), *(f"--env={item}" for item in args.env)]
            steps.append(("soak", lambda: _soak(soak_args, report)))
        for name, step in steps:
            print(f"\n== {name} ({time.perf_counter() - started:.0f} s)", flush=True)
            report.note(f"{name}: load average at start {load_average()}")
            try:
                step()
            except Skip as exc:
                report.note(f"{name}: skipped: {exc}")
            except Exception as exc:
                crashed = True
                traceback.print_exc()
                report.note(f"{name}: FAILED: {type(exc).__name__}: {exc}")
    finally:
        inputs.close()
    elapsed = time.perf_counter() - started
    header += f"\nload average at the end {load_average()}"
    print(f"\n{header}\nfinished in {elapsed:.0f} s\n\n{report.table()}\n")
    for note in report.notes:
        print(f"- {note}")
    for title, table in report.sections:
        print(f"\n{title}\n{table}")
    if args.markdown:
        args.markdown.write_text(_markdown(header, elapsed, report))
        print(f"\nMarkdown written to {args.markdown}")
    return 1 if crashed else 0


def _steps(inputs: Inputs, report: Report, selected: set[str], *, reps: int, jobs: int,
           quick: bool, concurrencies: tuple[int, ...]) -> list[tuple[str, Callable[[], None]]]:
    """The selected benchmarks, in the order they run."""
    steps: list[tuple[str, Callable[[], None]]] = []
    if {"vips", "pillow"} & selected:
        steps.append(("vips+pillow", lambda: images.photo_benches(
            inputs, reps, report, vips="vips" in selected, pillow="pillow" in selected)))
    for name, step in (
        ("limit", lambda: images.limit_bench(inputs, reps, report)),
        ("encoders", lambda: images.encoder_sweep(inputs, reps, report)),
        ("video", lambda: video.video_bench(inputs, reps, report)),
        ("ranged", lambda: ranged_reads.ranged_reads_bench(inputs, reps, report)),
        ("hdr", lambda: hdr.hdr_bench(inputs, reps, report)),
        ("crops", lambda: crops.crops_bench(inputs, reps, report)),
        ("thumbor", lambda: thumbor.thumbor_bench(inputs, reps, report)),
        ("animation", lambda: animation.animation_bench(inputs, reps, report)),
        ("events", lambda: events.events_bench(report, inputs.workdir, jobs=65, reps=reps)),
        ("documents", lambda: documents.documents_bench(inputs, reps, report)),
        ("facts", lambda: facts.facts_bench(inputs, reps, report)),
        ("clips", lambda: video_renditions.clips_bench(inputs, reps, report)),
        ("concurrency", lambda: pipeline.concurrency_bench(inputs, reps, report)),
    ):
        if name in selected:
            steps.append((name, step))
    if {"e2e", "batch", "memory"} & selected:
        steps.append(("e2e+batch+memory", lambda: _services_benches(
            inputs, report, selected, jobs=jobs, quick=quick, concurrencies=concurrencies)))
    return steps


def _services_benches(inputs: Inputs, report: Report, selected: set[str], *, jobs: int,
                      quick: bool, concurrencies: tuple[int, ...]) -> None:
    with pipeline.services(inputs.workdir) as svc:
        if "e2e" in selected:
            pipeline.e2e_bench(inputs, report, svc, jobs=jobs, concurrencies=concurrencies)
        if "batch" in selected:
            batch.pipeline_vs_batch(inputs, report, svc, jobs=jobs,
                                    concurrencies=concurrencies)
        if "memory" in selected:
            pipeline.memory_bench(inputs, report, svc, runs=1 if quick else 3)


def _soak(argv: list[str], report: Report) -> None:
    from bench import soak

    for line in soak.run_soak(soak.parser().parse_args(argv), report):
        report.note(f"soak: {line}")


def _selected(parser: argparse.ArgumentParser, only: list[str] | None) -> set[str]:
    if not only:
        return set(DEFAULT)
    names = {name.strip() for item in only for name in item.split(",") if name.strip()}
    unknown = names - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(BENCHES)}")
    return names


def machine_header(quick: bool, reps: int) -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = [f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
                f"(pyvips-binary)", f"Python {platform.python_version()}"]
    for label, command in (("vipsthumbnail", ["vipsthumbnail", "--version"]),
                           ("ffmpeg", ["ffmpeg", "-version"]),
                           ("thumbor", [str(THUMBOR_VENV / "bin" / "thumbor"), "--version"])):
        if shutil.which(command[0]):
            output = subprocess.run(command, capture_output=True, text=True, check=False)
            first = (output.stdout or output.stderr).strip().splitlines()
            versions.append(f"{label}: {first[0][:60] if first else '?'}")
        else:
            versions.append(f"{label}: not installed")
    return (f"media-worker benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{'quick' if quick else 'full'} run, {reps} repetitions, medians\n"
            f"machine: {CORES} cores (nproc {os.cpu_count()}), {model}, "
            f"{platform.system()} {platform.release()}\n"
            f"{'; '.join(versions)}\n"
            f"code: {Path(media_worker.__file__).parent} ({_git_head()})\n"
            f"corpus: {CORPUS}; VIPS_CONCURRENCY={os.environ.get('VIPS_CONCURRENCY', 'unset')}, "
            f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset')}; "
            f"load average {load_average()}")


def _git_head() -> str:
    """The commit of the code measured, when it is this repository's src/."""
    code = Path(media_worker.__file__).resolve().parent
    if not code.is_relative_to(Path(__file__).resolve().parent.parent / "src"):
        return "a copy outside this repository, e.g. a patched snapshot"
    result = subprocess.run(["git", "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True, check=False, cwd=code)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True,
                           text=True, check=False, cwd=code).stdout.strip()
    head = result.stdout.strip()[:70] if result.returncode == 0 else "?"
    return f"repository HEAD {head}{' + uncommitted changes' if dirty else ''}"


def _markdown(header: str, elapsed: float, report: Report) -> str:
    parts = ["```", header, f"finished in {elapsed:.0f} s", "```", "", report.markdown(), ""]
    parts += [f"- {note}" for note in report.notes]
    for title, table in report.sections:
        parts += ["", f"**{title}**", "", table]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
