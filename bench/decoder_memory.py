"""Decoder memory across jobs: the RSS of one decoder process after each round of the same mix.

`.venv/bin/python -m bench.decoder_memory [--rounds 3]`

A HEIC (libheif threads), two videos (FFmpeg threads) and a progressive 24 MP JPEG, rendered
round after round by the worker's own IsolatedEngine with one decoder. Without the arena limit
and the trim after each job (`engines/allocator.py`) the decoder kept tens of MB more every
round; with them its memory follows the current job, not the history of jobs. Printed, not
asserted: the figures depend on the machine and the libraries (docs/performance.md, "Memory").
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

from bench.common import CORPUS, SIZES, WEBP_Q80
from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import SourceMedia

FILES = ("images/formats/heic/IMG_5195.HEIC", "images/formats/jpeg/craft-beer.jpg",
         "videos/sample.mp4", "videos/video-1080p-60fps-2s.mp4")


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decoder_memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    after_round = measure(args.rounds)
    print("decoder RSS after each round of the mix: "
          + " -> ".join(f"{mb} MB" for mb in after_round)
          + f" (growth {after_round[-1] - after_round[0]:+d} MB)")


if __name__ == "__main__":
    main()
