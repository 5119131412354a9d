"""The pictures of docs/media.md, made by hand: `.venv/bin/python docs/make_figures.py
[resize-light] [hdr] [placeholders]` (all three when none is named).

Writes into docs/figures/:
- `resize-light.png`: a test picture made for RESIZE_LIGHT (1-px white/black lines beside the
  flat grey that has their light, sRGB 188) at 1:1, then downscaled 4x by the engine with
  `gamma` and with `linear`;
- `hdr-<name>.png` for two HDR corpus files whose licence allows it: "before" is the thumbnail
  the worker made before the HDR work (its own code, the commit before it, checked out in a
  temporary `git worktree` and run in a child process: PQ code values shown as if sRGB),
  "after" the thumbnail of this tree (tone-mapped);
- `placeholders.png`: for a few corpus pictures, the thumbnail beside what an app paints from
  its BlurHash and its ThumbHash (each decoded at the thumbnail's size, as apps do: BlurHash
  by its own decoder, ThumbHash's 32 px picture enlarged smoothly), and its dominant colour and
  palette; pictures with alpha are shown over a checkerboard.

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
PLACEHOLDER_PANEL = 200  # px, the box of each picture in the placeholders figure
PLACEHOLDER_FILES = (  # licences: docs/media.md, under the figure
    "images/camera/prairie_falcon.jpg",
    "images/orientation/Portrait_0.jpg",
    "images/formats/webp/flower.webp",
    "images/formats/avif/plum-blossom-large.profile0.8bpc.yuv420.alpha-full.avif",
)
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


def main(names: list[str]) -> int:
    FIGURES.mkdir(parents=True, exist_ok=True)
    wanted = set(names) or {"resize-light", "hdr", "placeholders"}
    if "resize-light" in wanted:
        resize_light_figure(FIGURES / "resize-light.png")
    if "placeholders" in wanted:
        placeholders_figure(FIGURES / "placeholders.png")
    if "hdr" in wanted:
        hdr_figures()
    return 0


def hdr_figures() -> None:
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


# --- placeholders ---------------------------------------------------------------------------
def placeholders_figure(out: Path) -> None:
    rows = [_placeholder_row(CORPUS / relative) for relative in PLACEHOLDER_FILES
            if (CORPUS / relative).is_file()]
    if not rows:
        print(f"skipped {out.name}: the corpus is missing", file=sys.stderr)
        return
    grid = rows[0]
    for row in rows[1:]:
        grid = grid.join(row, "vertical", background=BACKGROUND, expand=True)
    _save(grid, out)


def _placeholder_row(path: Path) -> pyvips.Image:
    import base64

    import blurhash

    from media_worker.config import ThumbnailFormat
    from media_worker.engines.local import LocalEngine
    from media_worker.engines.placeholders.colors import colors_of
    from media_worker.engines.placeholders.thumbhash import thumbhash_of, thumbhash_to_rgba
    from media_worker.engines.port import OutputSpec, SourceMedia
    from media_worker.types import ThumbnailSize

    engine = LocalEngine(max_pixels=10**9, max_video_seconds=14400)
    result = engine.render(SourceMedia(path, "b", "k"),
                           [ThumbnailSize.parse(f"panel:{PLACEHOLDER_PANEL}x{PLACEHOLDER_PANEL}")],
                           OutputSpec(format=ThumbnailFormat.PNG))
    thumb = pyvips.Image.new_from_buffer(result.thumbnails[0].data, "").copy_memory()
    width, height = thumb.width, thumb.height
    blurred = np.array(blurhash.decode(result.metadata["placeholder"]["value"], width, height),
                       dtype=np.uint8)
    thumbhash = thumbhash_of(thumb)
    painted = pyvips.Image.new_from_array(thumbhash_to_rgba(base64.b64decode(thumbhash)),
                                          interpretation="srgb")
    painted = painted.resize(width / painted.width, vscale=height / painted.height,
                             kernel="linear")
    colours = colors_of(thumb)
    return _row([(path.name[:24], _on_checks(thumb)),
                 ("BlurHash", pyvips.Image.new_from_array(blurred, interpretation="srgb")),
                 (f"ThumbHash ({len(base64.b64decode(thumbhash))} bytes)", _on_checks(painted)),
                 (f"dominant {colours.dominant}, palette", _swatches(colours.palette, height))])


def _on_checks(image: pyvips.Image) -> pyvips.Image:
    """A picture with alpha over a grey checkerboard, so its transparency shows."""
    if not image.hasalpha():
        return image
    ys, xs = np.mgrid[0:image.height, 0:image.width]
    checks = np.where(((xs // 8) + (ys // 8)) % 2, 255, 204).astype(np.uint8)
    board = pyvips.Image.new_from_array(np.stack([checks] * 3, axis=-1),
                                        interpretation="srgb")
    return board.composite2(image, "over").flatten()


def _swatches(colours: list[str], height: int) -> pyvips.Image:
    """The dominant colour as a wide band on top, then the palette, heaviest first."""
    width = 120
    strip = np.full((height, width, 3), 204, dtype=np.uint8)  # grey lines between swatches
    strip[1:height // 2 - 1, 1:-1] = _rgb(colours[0]) if colours else 255
    band = (height - height // 2) // max(1, len(colours))
    for index, colour in enumerate(colours):
        top = height // 2 + index * band
        strip[top + 1:top + band - 1, 1:-1] = _rgb(colour)
    return pyvips.Image.new_from_array(strip, interpretation="srgb")


def _rgb(colour: str) -> list[int]:
    return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]


# --- composing ------------------------------------------------------------------------------
def side_by_side(panels: list[tuple[str, pyvips.Image]], out: Path) -> None:
    """Panels in a row, each with its caption above, on white, as PNG."""
    _save(_row(panels), out)


def _row(panels: list[tuple[str, pyvips.Image]]) -> pyvips.Image:
    """Panels in a row, each with its caption above, on white."""
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
    return row


def _save(image: pyvips.Image, out: Path) -> None:
    image.pngsave(str(out), compression=9, keep=0)
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
    sys.exit(main(sys.argv[1:]))
