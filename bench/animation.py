"""Bench 16 (`--only animation`): animated GIF → animated WebP, CPU per frame, against the
command-line tools on the same input, size and encoder settings (lossy, quality 80, effort
2: the worker's WebP settings), side by side in one run.

- **16a same size**: the worker renders one animated size whose box holds the original, so
  nothing is resized, against `gif2webp -lossy -q 80 -m 2` and `img2webp -lossy -q 80 -m 2`
  (Debian `webp`; img2webp is given the frames as PNG files written beforehand, uncounted,
  with their delays). Neither tool resizes, so this is the size they can be compared at.
- **16b thumbnail box**: a 160x160 animated size against `vipsthumbnail in.gif[n=-1] -s
  160x160 -o out.webp[Q=80,effort=2]`, which resizes the whole animation as one tall image.

The worker's figure is `LocalEngine.render` in this process (the decode, the first-visible
frame search, the encode and the BlurHash placeholder of a job), and once more without the
placeholder; the tools' figure is their
process's CPU, start-up included (a fraction of a millisecond per frame at these lengths).
Medians over the repetitions, interleaved so load from other processes weighs on all alike.
Target: ≤ 1× each anchor's CPU per frame.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyvips

from bench.common import (
    MAX_PIXELS,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    children_cpu_of,
    cpu_of,
    interleaved,
    local_engine,
    median,
)
from media_worker.engines.images import render_image
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.engines.sniff import sniff
from media_worker.types import ThumbnailSize

GIFS = ("images/formats/gif/chi.gif", "images/formats/gif/iss634.gif")
PER_FRAME_TARGET = Target("<=", 1.0)
BOX = 160
WEBP_ARGS = ["-lossy", "-q", "80", "-m", "2"]


def animation_bench(inputs: Inputs, reps: int, report: Report) -> None:
    for tool in ("gif2webp", "img2webp", "vipsthumbnail"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed (scripts/ensure-tools.sh --bench: Debian "
                       "webp and libvips-tools)")
    engine = local_engine()
    scratch = Path(tempfile.mkdtemp(prefix="bench-animation-", dir=inputs.workdir))
    out = scratch / "out.webp"
    for relative in GIFS:
        gif = inputs.corpus_file(relative)
        header = pyvips.Image.new_from_file(str(gif), access="sequential")
        frames = int(header.get("n-pages"))
        whole = [ThumbnailSize(name="a", width=header.width, height=header.height,
                               animated=True)]
        box = [ThumbnailSize(name="a", width=BOX, height=BOX, animated=True)]
        img2webp = [_img2webp_command(gif, scratch, out)]
        variants: dict[str, Callable[[], float]] = {
            "ours same size": _ours(engine, gif, whole),
            "ours same size, no placeholder": _ours_image(gif, whole),
            "gif2webp": lambda g=gif: children_cpu_of(
                [["gif2webp", *WEBP_ARGS, str(g), "-o", str(out)]]),
            "img2webp": lambda c=img2webp: children_cpu_of(c),
            "ours 160x160": _ours(engine, gif, box),
            "vipsthumbnail": lambda g=gif: children_cpu_of(
                [["vipsthumbnail", f"{g}[n=-1]", "-s", f"{BOX}x{BOX}",
                  "-o", f"{out}[Q=80,effort=2]"]]),
        }
        times = interleaved(variants, reps)
        per_frame = {name: median(values) / frames for name, values in times.items()}
        case = f"{gif.name} {header.width}x{header.height}, {frames} frames"
        for anchor, ours in (("gif2webp", "ours same size"), ("img2webp", "ours same size"),
                             ("gif2webp", "ours same size, no placeholder"),
                             ("vipsthumbnail", "ours 160x160")):
            label = ("16b GIF→WebP 160x160 (CPU/frame)" if anchor == "vipsthumbnail"
                     else "16a GIF→WebP same size (CPU/frame)")
            report.add(Row(label, case, f"{_ms(per_frame[ours])} {ours}",
                           f"{_ms(per_frame[anchor])} {anchor}",
                           per_frame[ours] / per_frame[anchor], PER_FRAME_TARGET))
    shutil.rmtree(scratch, ignore_errors=True)


def _ours(engine: LocalEngine, gif: Path, sizes: list[ThumbnailSize]) -> Callable[[], float]:
    source = SourceMedia(gif, "bench", gif.name)
    return lambda: cpu_of(lambda: engine.render(source, sizes, OutputSpec()))


def _ours_image(gif: Path, sizes: list[ThumbnailSize]) -> Callable[[], float]:
    """The image path alone: the job without its BlurHash placeholder (computed once per
    job from the smallest thumbnail, whatever the frames)."""
    media_type = sniff(gif)
    return lambda: cpu_of(lambda: render_image(gif, media_type, sizes, OutputSpec(),
                                               max_pixels=MAX_PIXELS))


def _img2webp_command(gif: Path, scratch: Path, out: Path) -> list[str]:
    """img2webp's arguments for the GIF's frames, written as PNGs (as composited by
    libvips) with each frame's delay."""
    strip = pyvips.Image.new_from_file(str(gif), n=-1)
    height = int(strip.get("page-height"))
    delays = list(strip.get("delay"))
    command = ["img2webp", "-loop", str(strip.get("loop")), *WEBP_ARGS]
    for index, delay in enumerate(delays):
        frame = scratch / f"{gif.stem}-{index:04d}.png"
        strip.crop(0, index * height, strip.width, height).pngsave(str(frame), compression=1)
        command += ["-d", str(max(delay, 10)), str(frame)]
    return [*command, "-o", str(out)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
