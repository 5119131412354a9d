"""Which modules a render loads, asked of a fresh interpreter (this one has loaded them all).

Each step renders some files with some sizes and an output colour setting, then reports
whether each named module has been imported by then; steps run in order in one process, so a
later step sees what earlier ones loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """
import json, sys
from pathlib import Path
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

modules, steps = json.loads(sys.argv[1])
engine = LocalEngine(max_pixels=10**8, max_video_seconds=3600)
for paths, sizes, color in steps:
    for path in paths:
        engine.render(SourceMedia(Path(path), "b", "k"), ThumbnailSize.parse_list(sizes),
                      OutputSpec(color=color))
    print(json.dumps({name: name in sys.modules for name in modules}))
"""


@dataclass(frozen=True)
class Step:
    paths: list[Path]
    sizes: str = "s:64x64"
    color: str = "srgb"


def modules_loaded(modules: list[str], *steps: Step) -> list[dict[str, bool]]:
    """For each step, whether each of `modules` was imported after it."""
    plan = [[[str(path) for path in step.paths], step.sizes, step.color] for step in steps]
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([modules, plan])],
                         capture_output=True, text=True, check=True, timeout=120)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
