"""What the preview and storyboard tests share: videos made for a test by the `ffmpeg` command
(small and at a low frame rate, so even ten minutes encode in about a second), and rendering a
file with a preview clip or a storyboard asked for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.renditions import parse_preview, parse_storyboard
from media_worker.types import ThumbnailSize

STILL = ThumbnailSize.parse_list("small:96x96")


def made_video(path: Path, *, seconds: float, fps: int, keyframe_every: int,
               size: str = "160x90") -> Path:
    """An H.264 test pattern (moving, so no frame is uniform) with a keyframe every
    `keyframe_every` frames and no others (scene cuts would add some)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed (Debian package ffmpeg; scripts/ensure-tools.sh)")
    subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate={fps}", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", str(keyframe_every), "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def render(engine: LocalEngine, path: Path, *, preview: str = "off", storyboard: str = "off",
           sizes: list[ThumbnailSize] = STILL, **limits: int) -> RenderResult:
    """The engine's result for `path` with VIDEO_PREVIEW / VIDEO_STORYBOARD set so."""
    output = OutputSpec(ThumbnailFormat.PNG, 80, preview=parse_preview(preview),
                        storyboard=parse_storyboard(storyboard), **limits)
    return engine.render(SourceMedia(path, "media", path.name), sizes, output)


def of_kind(result: RenderResult, kind: str) -> list[RenderedThumbnail]:
    return [thumb for thumb in result.thumbnails if thumb.kind == kind]


def first_page(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def difference(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute difference (0-255) of two pictures of one size, alpha ignored."""
    assert (a.width, a.height) == (b.width, b.height)
    return float((a[:3].cast("float") - b[:3].cast("float")).abs().avg())
