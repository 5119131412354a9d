"""Animated sizes through the engine: every animated format of the corpus stays animated,
frames keep their delays, loop and transparency, are framed like stills and cut at the
limits (with `frames` saying so), and a size without `animated` is a still of the first
frame worth showing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pyvips
from PIL import Image, ImageDraw

from media_worker.engines.animated.frames import Frames
from media_worker.engines.animated.resize import Window, resized_frames
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.types import ThumbnailSize
from tests.unit.gif_bytes import one_pixel_frames_gif

ANIMATIONS = {  # corpus file: frames, loop
    "images/formats/gif/chi.gif": (31, 0),
    "images/formats/webp/iss634.webp": (42, 0),
    "images/formats/png/iss634.apng": (41, 0),
    "images/formats/avif/colors-animated-8bpc.avif": (5, 0),
}
ANIM = ThumbnailSize.parse("anim:64x64:animated")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, sizes: str, **limits: int) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name),
                         ThumbnailSize.parse_list(sizes), OutputSpec(**limits))


def vips_frames(thumb: RenderedThumbnail) -> tuple[int, list[int], int]:
    """Frame count, delays and loop of an output, as libvips reads it."""
    image = pyvips.Image.new_from_buffer(thumb.data, "", n=-1)
    return int(image.get("n-pages")), list(image.get("delay")), int(image.get("loop"))


def pillow_frames(thumb: RenderedThumbnail) -> tuple[int, list[int], int]:
    """Frame count, delays and loop of an output, as Pillow reads it."""
    with Image.open(io.BytesIO(thumb.data)) as image:
        delays = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()  # WebP says a frame's duration once it is loaded
            delays.append(int(image.info["duration"]))
        return image.n_frames, delays, int(image.info.get("loop", 1))


def made_gif(path: Path, delays: list[int], *, loop: int = 0, size: tuple[int, int] = (96, 64),
             blank_first: bool = False, subject_x: int | None = None) -> Path:
    """A GIF whose frames all differ (a bar moving down), with these delays; the first frame
    flat grey when `blank_first`; a small bright square at `subject_x` on every other frame."""
    frames = []
    for index in range(len(delays)):
        frame = Image.new("RGB", size, (90, 90, 90))
        if not (blank_first and index == 0):
            draw = ImageDraw.Draw(frame)
            draw.rectangle((0, index * 3, size[0], index * 3 + 4), fill=(200, 40, 40))
            if subject_x is not None:
                draw.rectangle((subject_x, 20, subject_x + 12, 32), fill=(255, 255, 255))
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=delays, loop=loop,
                   optimize=False, disposal=1)
    return path


@pytest.mark.parametrize("name", sorted(ANIMATIONS))
def test_every_animated_format_of_the_corpus_gives_an_animation(
        engine: LocalEngine, corpus: Path, name: str) -> None:
    frames, loop = ANIMATIONS[name]
    thumb = render(engine, corpus / name, "anim:64x64:animated").thumbnails[0]
    assert (thumb.kind, thumb.format, thumb.mime_type, thumb.frames) == (
        "animation", "webp", "image/webp", frames)
    for decoded in (vips_frames(thumb), pillow_frames(thumb)):
        count, delays, played_loop = decoded
        assert 1 < count <= frames  # WebP merges a frame identical to the one before
        assert (sum(delays), played_loop) == (thumb.duration_ms, loop)


def test_delays_and_loop_are_kept_in_webp_and_gif(engine: LocalEngine, tmp_path: Path) -> None:
    """A GIF's loop count says how often it repeats: `loop=3` plays 4 times, and a WebP's
    loop count says how often it plays (libvips' `loop` is the plays of either)."""
    delays = [50, 120, 200, 80, 300]
    path = made_gif(tmp_path / "timed.gif", delays, loop=3)
    webp, gif = render(engine, path, "w:48x48:animated,g:48x48:gif:animated").thumbnails
    assert (webp.format, gif.format, gif.mime_type) == ("webp", "gif", "image/gif")
    for thumb in (webp, gif):
        assert (thumb.frames, thumb.duration_ms) == (5, 750)
        assert vips_frames(thumb) == (5, delays, 4)
    assert pillow_frames(webp) == (5, delays, 4)
    assert pillow_frames(gif) == (5, delays, 3)


def test_a_gif_frame_of_no_delay_is_played_for_100_ms_as_browsers_do(
        engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "fast.gif", [0, 100, 100])
    thumb = render(engine, path, "w:48x48:animated").thumbnails[0]
    assert vips_frames(thumb)[1] == [100, 100, 100]
    assert thumb.duration_ms == 300


def test_an_animation_is_cut_at_the_frame_limit(engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "long.gif", [40] * 20)
    result = render(engine, path, "w:48x48:animated", max_animation_frames=6)
    thumb = result.thumbnails[0]
    assert (thumb.frames, thumb.duration_ms) == (6, 240)
    assert vips_frames(thumb)[0] == pillow_frames(thumb)[0] == 6
    assert result.metadata["animation"] == {"frames": 20, "loop": 0}


def test_an_animation_is_cut_at_the_pixel_limit(engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "long.gif", [40] * 20)  # 96x64: a 48x48 box holds 48x32
    thumb = render(engine, path, "w:48x48:animated",
                   max_animation_pixels=48 * 32 * 7 + 100).thumbnails[0]
    assert (thumb.width, thumb.height, thumb.frames) == (48, 32, 7)
    assert vips_frames(thumb)[0] == 7


def test_every_animated_size_of_a_job_keeps_the_frames_the_largest_can(
        engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "long.gif", [40] * 20)
    small, large = render(engine, path, "s:24x24:animated,l:96x96:animated",
                          max_animation_pixels=96 * 64 * 5).thumbnails
    assert (small.frames, large.frames) == (5, 5)
    assert small.duration_ms == large.duration_ms == 200


def test_a_cover_animation_is_exactly_the_box_with_one_crop_for_every_frame(
        engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "wide.gif", [40] * 4, size=(200, 100))
    thumb = render(engine, path, "sq:50x50:cover:animated").thumbnails[0]
    assert (thumb.width, thumb.height, thumb.kind) == (50, 50, "animation")
    assert thumb.crop is not None
    assert (thumb.crop.x, thumb.crop.y, thumb.crop.width, thumb.crop.height) == (50, 0, 100, 100)
    image = pyvips.Image.new_from_buffer(thumb.data, "", n=-1)
    assert (image.width, image.get("page-height"), image.get("n-pages")) == (50, 50, 4)


def test_a_smart_animation_centres_on_the_subject_of_the_first_visible_frame(
        engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "subject.gif", [40] * 4, size=(300, 100), blank_first=True,
                    subject_x=260)
    thumb = render(engine, path, "sq:60x60:smart:animated").thumbnails[0]
    assert thumb.crop is not None
    assert (thumb.crop.width, thumb.crop.height) == (100, 100)  # centred: x 100-200
    assert thumb.crop.x <= 260
    assert thumb.crop.x + thumb.crop.width >= 272


def test_frames_are_resized_without_bleeding_into_each_other() -> None:
    black = pyvips.Image.black(40, 40, bands=3).cast("uchar")
    white = (black + 255).cast("uchar")
    strip = pyvips.Image.arrayjoin([black, white, black, white], across=1).copy_memory()
    frames = Frames(strip.copy(interpretation="srgb"), 4, (100,) * 4, 0)
    resized = resized_frames(frames, Window(0, 0, 40, 40), (15, 15))
    assert (resized.width, resized.height) == (15, 60)
    for index in range(4):
        frame = resized.crop(0, index * 15, 15, 15)
        expected = 0 if index % 2 == 0 else 255
        assert frame.min() == frame.max() == expected  # first and last rows included


def test_transparency_survives_gif_disposal(engine: LocalEngine, corpus: Path) -> None:
    thumb = render(engine, corpus / "images/formats/gif/dispose_bgnd_rgba.gif",
                   "a:100x100:animated:gif").thumbnails[0]
    image = pyvips.Image.new_from_buffer(thumb.data, "", n=-1)
    first = image.crop(0, 0, 100, 100)
    assert first.bands == 4
    assert first[3](50, 50)[0] == 0  # the transparent middle of the first frame
    assert first[3](2, 2)[0] == 255  # its opaque corner


def test_a_still_of_an_animation_shows_its_first_non_blank_frame(
        engine: LocalEngine, tmp_path: Path) -> None:
    path = made_gif(tmp_path / "opens-flat.gif", [40] * 3, blank_first=True)
    thumb = render(engine, path, "s:96x96").thumbnails[0]
    image = pyvips.Image.new_from_buffer(thumb.data, "")
    assert thumb.kind == "image"
    assert image.max() > 150  # the red bar of frame 1, not frame 0's flat grey


def test_an_animated_size_of_a_still_original_is_a_still(engine: LocalEngine,
                                                         corpus: Path) -> None:
    path = corpus / "images/formats/png/hopper.png"
    webp, gif = render(engine, path, "a:64x64:animated,g:64x64:gif:animated").thumbnails
    assert (webp.kind, webp.format, webp.frames, webp.duration_ms) == ("image", "webp",
                                                                       None, None)
    assert (gif.kind, gif.format, gif.mime_type) == ("image", "gif", "image/gif")
    assert pyvips.Image.new_from_buffer(gif.data, "").width == 64


BOMB_SCRIPT = """
import json, sys
from pathlib import Path
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize
engine = LocalEngine(max_pixels=10**8, max_video_seconds=3600)
result = engine.render(SourceMedia(Path(sys.argv[1]), "b", "k"),
                       ThumbnailSize.parse_list("s:64x64,a:128x128:animated"), OutputSpec())
moving = result.thumbnails[1]
# VmHWM, not ru_maxrss: the latter keeps the RSS of the forked test process before exec.
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"frames": moving.frames, "kind": moving.kind, "peak": peak}))
"""
BOMB_PEAK_BYTES = 250 * 1024 * 1024  # all 4,000 frames of it would hold 4 GB


def test_a_gif_bomb_of_thousands_of_frames_is_cut_inside_the_memory_limit(
        tmp_path: Path) -> None:
    """A fresh interpreter renders it, so the peak RSS measured is this render's alone."""
    bomb = one_pixel_frames_gif(tmp_path / "bomb.gif", width=512, height=512, frames=4000)
    assert bomb.stat().st_size < 300_000
    out = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(bomb)], capture_output=True,
                         text=True, check=True, timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert (report["kind"], report["frames"]) == ("animation", 300)
    assert report["peak"] < BOMB_PEAK_BYTES, report
