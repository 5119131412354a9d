"""The pictures of docs/media.md, made by hand: `.venv/bin/python docs/make_figures.py`.

Writes into docs/figures/:
- `resize-light.png`: a test picture made for RESIZE_LIGHT (1-px white/black lines beside the
  flat grey that has their light, sRGB 188) at 1:1, then downscaled 4x by the engine with
  `gamma` and with `linear`;
- `hdr-<name>.png` for two HDR corpus files whose licence allows it: "before" is the thumbnail
  the worker made before the HDR work (its own code, the commit before it, checked out in a
  temporary `git worktree` and run in a child process: PQ code values shown as if sRGB),
  "after" the thumbnail of this tree (tone-mapped).

Needs the corpus (`../shared/corpus` or MEDIA_WORKER_CORPUS) and git.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyvips

REPO = Path(__file__).resolve().parent.parent
FIGURES = REPO / "docs" / "figures"
CORPUS = Path(os.environ.get("MEDIA_WORKER_CORPUS", REPO.parent / "shared" / "corpus"))
BEFORE_HDR = "fbc29ae"  # the commit before "HDR colour core (issue 13)"
HDR_FILES = {  # figure name → corpus path (licences: docs/media.md, under the pictures)
    "hdr-avif-pq-p3": "images/formats/avif/10bit-HDR-P3-nclx.avif",
    "hdr-video-hdr10": "videos/hdr10-av1.mp4",
}
PANEL = 360  # px, the box of each thumbnail in the HDR figures
BACKGROUND = [255, 255, 255]
# A thumbnail of `path` (argv[2]) fitted to a PANEL box, as PNG to argv[3], by whichever
# media_worker is first on the path: this tree, or the worktree of the commit before HDR.
RENDER = """
import sys
from pathlib import Path
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.config import ThumbnailFormat
from media_worker.types import ThumbnailSize
box = int(sys.argv[1])
engine = LocalEngine(max_pixels=10**9, max_video_seconds=14400)
result = engine.render(SourceMedia(Path(sys.argv[2]), "b", "k"),
                       [ThumbnailSize.parse(f"panel:{box}x{box}")],
                       OutputSpec(format=ThumbnailFormat.PNG))
Path(sys.argv[3]).write_bytes(result.thumbnails[0].data)
"""


def main() -> int:
    FIGURES.mkdir(parents=True, exist_ok=True)
    resize_light_figure(FIGURES / "resize-light.png")
    with tempfile.TemporaryDirectory(prefix="mw-figures-") as scratch:
        before_src = _worktree(Path(scratch) / "before")
        try:
            for name, relative in HDR_FILES.items():
                path = CORPUS / relative
                if not path.is_file():
                    print(f"skipped {name}: {path} is missing", file=sys.stderr)
                    continue
                before = _render(before_src, path, Path(scratch) / f"{name}-before.png")
                after = _render(REPO / "src", path, Path(scratch) / f"{name}-after.png")
                side_by_side([("before: PQ code values shown as sRGB", before),
                              ("after: tone-mapped (BT.2390, BT.709 gamut)", after)],
                             FIGURES / f"{name}.png")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force",
                            str(Path(scratch) / "before")], cwd=REPO, check=False,
                           capture_output=True)
    return 0


# --- RESIZE_LIGHT ---------------------------------------------------------------------------
def stripes_picture(size: int = 240) -> np.ndarray:
    """Left: alternating 1-px white and black lines; right: flat sRGB 188, the same light
    (half of white's); a thin grey frame between them."""
    picture = np.zeros((size, size, 3), dtype=np.uint8)
    picture[::2, : size // 2] = 255
    picture[:, size // 2:] = 188
    return picture


def resize_light_figure(out: Path) -> None:
    from media_worker.config import ThumbnailFormat
    from media_worker.engines.encode import render_sizes
    from media_worker.engines.port import OutputSpec
    from media_worker.types import ThumbnailSize

    original = pyvips.Image.new_from_array(stripes_picture(), interpretation="srgb")
    size = [ThumbnailSize.parse(f"s:{original.width // 4}x{original.height // 4}")]
    panels = [("original, 1:1 (lines | flat 188)", original)]
    for light in ("gamma", "linear"):
        output = OutputSpec(format=ThumbnailFormat.PNG, resize_light=light)
        [thumb] = render_sizes(original, size, output)
        small = pyvips.Image.new_from_buffer(thumb.data, "")
        mean = small.crop(0, 0, small.width // 2 - 1, small.height).avg()
        # shown 4x with nearest neighbour so the tone (not the resampler) is what is seen
        panels.append((f"RESIZE_LIGHT={light}: lines -> {mean:.0f}",
                       small.resize(4, kernel="nearest")))
    side_by_side(panels, out)


# --- composing ------------------------------------------------------------------------------
def side_by_side(panels: list[tuple[str, pyvips.Image]], out: Path) -> None:
    """Panels in a row, each with its caption above, on white, as PNG."""
    columns = []
    for caption, picture in panels:
        image = picture[:3] if picture.bands > 3 else picture
        label = pyvips.Image.text(caption, dpi=96, font="sans", width=max(image.width, 200))
        label = label.linear(-1, 255).cast("uchar").bandjoin([label.linear(-1, 255)] * 2)
        label = label.cast("uchar").copy(interpretation="srgb")
        width = max(image.width, label.width)
        column = label.embed(0, 0, width, label.height + 6, background=BACKGROUND)
        column = column.join(image.embed(0, 0, width, image.height, background=BACKGROUND),
                             "vertical", background=BACKGROUND)
        columns.append(column.embed(8, 8, column.width + 16, column.height + 16,
                                    background=BACKGROUND))
    row = columns[0]
    for column in columns[1:]:
        row = row.join(column, "horizontal", background=BACKGROUND, expand=True)
    row.pngsave(str(out), compression=9, keep=0)
    print(f"wrote {out.relative_to(REPO)} ({out.stat().st_size // 1024} KiB)")


def _render(src: Path, path: Path, out: Path) -> pyvips.Image:
    env = dict(os.environ, PYTHONPATH=str(src))  # ahead of the venv's install of this tree
    subprocess.run([sys.executable, "-c", RENDER, str(PANEL), str(path), str(out)], env=env,
                   check=True)
    return pyvips.Image.new_from_file(str(out))


def _worktree(where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), BEFORE_HDR], cwd=REPO,
                   check=True, capture_output=True)
    return where / "src"


if __name__ == "__main__":
    sys.exit(main())
