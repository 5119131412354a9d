"""Every playable corpus video gets a preview clip and a storyboard: the clip decodes with the
frames it claims (WebP and MP4 in turn), the WebVTT parses and points inside its sheets, and
both keep the still's upright aspect. Small boxes, one-second clips at 4 fps: the whole corpus
costs a few seconds."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
import pyvips
import webvtt
from PIL import Image

from media_worker.engines.local import LocalEngine
from media_worker.engines.port import RenderedThumbnail
from media_worker.types import ThumbnailSize
from tests.conftest import CORPUS
from tests.unit.clips import of_kind, render

STILL = [ThumbnailSize.parse("still:96x96")]


def corpus_videos() -> list[object]:
    """The playable videos of the corpus (top level of videos/), read at collection."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return [pytest.param(None, id="corpus-missing")]
    rows = manifest.read_text().splitlines()[1:]
    names = [row.split("\t", 1)[0] for row in rows if row.startswith("videos/")]
    return [pytest.param((name, "webp" if index % 2 == 0 else "mp4"), id=name)
            for index, name in enumerate(name for name in names if name.count("/") == 1)]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def clip_frames(clip: RenderedThumbnail) -> int:
    if clip.format == "webp":
        with Image.open(io.BytesIO(clip.data)) as pillow:
            assert pillow.size == (clip.width, clip.height)
            if pillow.n_frames > 1:  # one frame left after merging makes a still
                assert pillow.info["loop"] == 0
            return pillow.n_frames
    with av.open(io.BytesIO(clip.data)) as container:
        frames = list(container.decode(video=0))
    assert (frames[0].width, frames[0].height) == (clip.width, clip.height)
    return len(frames)


def aspect(width: int, height: int) -> float:
    return width / height


@pytest.mark.parametrize("case", corpus_videos())
def test_every_corpus_video_gets_a_preview_and_a_storyboard(
        engine: LocalEngine, corpus: Path, case: tuple[str, str] | None) -> None:
    assert case is not None
    name, fmt = case
    result = render(engine, corpus / name, preview=f"96x96:1:4:{fmt}",
                    storyboard="64x64:auto", sizes=STILL)
    still = result.thumbnails[0]
    [clip] = of_kind(result, "preview")
    assert clip.format == fmt
    stored = clip_frames(clip)
    assert stored == clip.frames if fmt == "mp4" else 1 <= stored <= clip.frames  # WebP
    # stores a frame identical to the one before as a longer delay of that one
    assert clip.duration_ms == clip.frames * 250
    even = 2 if fmt == "mp4" else 1  # H.264 4:2:0 rounds the sides down to even
    assert aspect(clip.width, clip.height) == pytest.approx(
        aspect(still.width, still.height), rel=0.05 + even / min(clip.width, clip.height))
    [vtt] = of_kind(result, "storyboard-vtt")
    sheets = {f"{sheet.size.name}.jpg": pyvips.Image.new_from_buffer(sheet.data, "")
              for sheet in of_kind(result, "storyboard")}
    cues = list(webvtt.from_buffer(io.StringIO(vtt.data.decode())))
    assert cues
    for cue in cues:
        sheet, fragment = cue.text.split("#xywh=")
        x, y, width, height = map(int, fragment.split(","))
        assert x + width <= sheets[sheet].width
        assert y + height <= sheets[sheet].height
        assert aspect(width, height) == pytest.approx(aspect(still.width, still.height),
                                                      rel=0.05 + 1 / min(width, height))
