"""Decoder memory across jobs: the RSS of one decoder process after each round of the same mix;
and (`--heic`) one grid HEIC's decode, tile by tile against whole.

`.venv/bin/python -m bench.decoder_memory [--rounds 3] [--heic [--reps 3]]`

A HEIC (libheif threads), two videos (FFmpeg threads) and a progressive 24 MP JPEG, rendered
round after round by the worker's own IsolatedEngine with one decoder. Without the arena limit
and the trim after each job (`engines/allocator.py`) the decoder kept tens of MB more every
round; with them its memory follows the current job, not the history of jobs. Printed, not
asserted: the figures depend on the machine and the libraries (docs/performance.md, "Memory").

`--heic` renders the default sizes of the 200 MP Samsung photo and of a 8.5 MP iPhone grid,
each way in a fresh interpreter (its peak RSS is the decode's): tile by tile
(`engines/images/heic_tiles.py`), and whole through pillow-heif as before (Pillow's bomb check
and MAX_PIXELS lifted for the 200 MP one, which they refuse). Wall and CPU seconds, the RSS
before the render (libraries loaded) and the peak; medians of `--reps`, the two ways
interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

from bench.common import CORPUS, SIZES, WEBP_Q80
from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import SourceMedia

FILES = ("images/formats/heic/IMG_5195.HEIC", "images/formats/jpeg/craft-beer.jpg",
         "videos/sample.mp4", "videos/video-1080p-60fps-2s.mp4")
HEICS = ("images/hdr/200MP.heic", "images/formats/heic/IMG_5195.HEIC")
DECODE = """
import json, resource, sys, time
from pathlib import Path
from PIL import Image
from media_worker.config import DEFAULT_SIZES
from media_worker.engines.images.heic_tiles import render_tiled_heic
from media_worker.engines.images.pillow import render_with_pillow
from media_worker.engines.port import OutputSpec
from media_worker.engines.probe import register_pillow_plugins
from media_worker.engines.sniff import sniff
from media_worker.types import ThumbnailSize

def status(field):
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) // 1024

path, how = Path(sys.argv[1]), sys.argv[2]
sizes, media_type = ThumbnailSize.parse_list(DEFAULT_SIZES), sniff(path)
register_pillow_plugins()
Image.MAX_IMAGE_PIXELS = None
before, started, cpu = status("VmRSS"), time.perf_counter(), time.process_time()
if how == "tiled":
    render_tiled_heic(path, media_type, sizes, OutputSpec(), max_pixels=10**8,
                      max_header_pixels=10**9, budget=None)
else:
    render_with_pillow(path, media_type, sizes, OutputSpec(), max_pixels=10**9, budget=None)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "before": before, "peak": status("VmHWM")}))
"""


def child_rss_mb(parent: int) -> list[int]:
    """VmRSS of each child process of `parent`, in MB (Linux /proc)."""
    children = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        children += (task / "children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(status.split("VmRSS:")[1].split()[0]) // 1024)
    return sizes


def measure(rounds: int) -> list[int]:
    """The decoder's RSS (MB) after each round."""
    engine = IsolatedEngine(partial(local_engine, max_pixels=10**8, max_video_seconds=60),
                            workers=1, timeout_seconds=60)
    after_round = []
    try:
        for _ in range(rounds):
            for name in FILES:
                path = CORPUS / name
                engine.render(SourceMedia(path, "bench", path.name), SIZES, WEBP_Q80)
            after_round.append(max(child_rss_mb(os.getpid())))
    finally:
        engine.close()
    return after_round


def decode_once(path: Path, how: str) -> dict[str, float]:
    """One render in a fresh interpreter: wall and CPU seconds, RSS before and peak (MB)."""
    done = subprocess.run([sys.executable, "-c", DECODE, str(path), how], check=True,
                          capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout.splitlines()[-1])


def heic_decodes(reps: int) -> None:
    for name in HEICS:
        runs: dict[str, list[dict[str, float]]] = {"tiled": [], "whole": []}
        for _ in range(reps):
            for how, found in runs.items():
                found.append(decode_once(CORPUS / name, how))
        for how, found in runs.items():
            wall, cpu, before, peak = (statistics.median(run[key] for run in found)
                                       for key in ("wall", "cpu", "before", "peak"))
            print(f"{name} {how}: {wall:.2f} s wall, {cpu:.2f} s CPU, RSS {before:.0f} MB "
                  f"before, {peak:.0f} MB peak (+{peak - before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decoder_memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heic", action="store_true", help="grid HEIC: tiles against whole")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.heic:
        heic_decodes(args.reps)
        return
    after_round = measure(args.rounds)
    print("decoder RSS after each round of the mix: "
          + " -> ".join(f"{mb} MB" for mb in after_round)
          + f" (growth {after_round[-1] - after_round[0]:+d} MB)")


if __name__ == "__main__":
    main()
