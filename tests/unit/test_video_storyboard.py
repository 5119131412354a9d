"""Storyboards (VIDEO_STORYBOARD): about one decoded frame per tile however long the video,
tiles upright, at display aspect and tone-mapped, on sheets the WebVTT cues point into."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import pytest
import pyvips
import webvtt

from media_worker.engines.display import DisplayTransform
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.probe import stream_duration
from media_worker.engines.video import _representative_frame
from media_worker.engines.video_frames import FramePainter
from media_worker.engines.video_reader import FrameReader
from media_worker.engines.video_storyboard import FORWARD_FRAMES, TileFinder, render_storyboard
from media_worker.renditions import StoryboardSpec
from media_worker.types import ThumbnailSize
from tests.unit.clips import difference, first_page, made_video, of_kind, render

FPS = 5


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 minutes at 5 fps (3,000 frames), a keyframe every 2 s."""
    return made_video(tmp_path_factory.mktemp("long") / "ten-minutes.mp4", seconds=600,
                      fps=FPS, keyframe_every=2 * FPS)


@pytest.fixture(scope="module")
def one_keyframe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 minutes at 5 fps (600 frames) and a keyframe only at the start."""
    return made_video(tmp_path_factory.mktemp("sparse") / "one-keyframe.mp4", seconds=120,
                      fps=FPS, keyframe_every=100_000)


def storyboard(engine: LocalEngine, path: Path, spec: str
               ) -> tuple[list[RenderedThumbnail], list[webvtt.Caption]]:
    result = render(engine, path, storyboard=spec)
    [vtt] = of_kind(result, "storyboard-vtt")
    assert (vtt.size.name, vtt.format, vtt.mime_type) == ("storyboard", "vtt", "text/vtt")
    return of_kind(result, "storyboard"), list(webvtt.from_buffer(io.StringIO(
        vtt.data.decode())))


def rectangle(cue: webvtt.Caption) -> tuple[str, tuple[int, ...]]:
    name, fragment = cue.text.split("#xywh=")
    return name, tuple(map(int, fragment.split(",")))


def decoding(path: Path, spec: StoryboardSpec) -> tuple[int, list[float], int]:
    """Frames decoded for the storyboard alone (after the representative frame), each tile's
    time, and how many tiles there are."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = FrameReader(container, stream)
        duration = stream_duration(container, stream)
        first = _representative_frame(reader, duration)
        before = reader.decoded
        times = spec.tile_times(duration)
        finder = TileFinder(reader, first, tolerance=spec.interval_for(duration) / 2,
                            window=FORWARD_FRAMES / FPS)
        taken = [reader.time_of(finder.frame_at(when)) for when in times]
        return reader.decoded - before, taken, len(times)


def test_a_ten_minute_video_decodes_about_one_frame_per_tile(ten_minutes: Path) -> None:
    decoded, _, tiles = decoding(ten_minutes, StoryboardSpec(80, 45))
    assert tiles == 100
    assert decoded <= tiles  # not 3,000: the keyframe of each tile, nothing after it


def test_each_tile_is_within_half_an_interval_of_its_time(ten_minutes: Path) -> None:
    spec = StoryboardSpec(80, 45)
    _, taken, _ = decoding(ten_minutes, spec)
    times = spec.tile_times(600)
    assert all(abs(got - wanted) <= 3.0 for got, wanted in zip(taken, times, strict=True))


def test_far_keyframes_are_decoded_forward_no_further_than_the_budget(
        one_keyframe: Path) -> None:
    decoded, taken, tiles = decoding(one_keyframe, StoryboardSpec(80, 45, 30.0))
    assert tiles == 4
    assert decoded <= tiles * FORWARD_FRAMES
    assert taken[1] == pytest.approx((FORWARD_FRAMES - 1) / FPS)  # 30 s is out of reach


def test_close_tiles_decode_on_instead_of_seeking_back_to_the_keyframe(
        one_keyframe: Path) -> None:
    decoded, taken, tiles = decoding(one_keyframe, StoryboardSpec(80, 45, 2.0))
    assert tiles == 60
    assert decoded <= 600 + FPS  # the video once, as it has to be
    times = StoryboardSpec(80, 45, 2.0).tile_times(120)
    assert all(abs(got - wanted) <= 1.0 for got, wanted in zip(taken, times, strict=True))


def test_a_video_shorter_than_one_interval_gives_one_tile(engine: LocalEngine,
                                                          corpus: Path) -> None:
    sheets, cues = storyboard(engine, corpus / "videos/sample.mp4", "80x80:10")
    assert [(s.size.name, s.kind, s.format, s.width, s.height) for s in sheets] == [
        ("storyboard-0", "storyboard", "jpeg", 80, 53)]
    assert [(cue.start, cue.text) for cue in cues] == [
        ("00:00:00.000", "storyboard-0.jpg#xywh=0,0,80,53")]


def test_every_cue_points_inside_an_existing_sheet(engine: LocalEngine,
                                                   corpus: Path) -> None:
    sheets, cues = storyboard(engine, corpus / "videos/Big_Buck_Bunny_180_10s.webm",
                              "80x80:0.08")
    assert len(cues) == 125
    decoded = {f"{sheet.size.name}.jpg": pyvips.Image.new_from_buffer(sheet.data, "")
               for sheet in sheets}
    assert {name: (image.width, image.height) for name, image in decoded.items()} == {
        "storyboard-0.jpg": (800, 450), "storyboard-1.jpg": (800, 135)}  # 10x10, then 10x3
    for cue in cues:
        name, (x, y, width, height) = rectangle(cue)
        assert (width, height) == (80, 45)
        assert x + width <= decoded[name].width
        assert y + height <= decoded[name].height


def test_tiles_are_the_picture_fitted_in_the_box_without_bars(engine: LocalEngine,
                                                              corpus: Path) -> None:
    sheets, cues = storyboard(engine, corpus / "videos/Big_Buck_Bunny_180_10s.webm",
                              "90x90:5")
    sheet = pyvips.Image.new_from_buffer(sheets[0].data, "")
    assert (sheet.width, sheet.height) == (180, 51)  # two 90x51 tiles, 320x180 fitted
    assert [rectangle(cue)[1] for cue in cues] == [(0, 0, 90, 51), (90, 0, 90, 51)]
    assert sheet.extract_area(0, 0, 90, 51).min() < 250  # picture, not padding


def test_a_rotated_video_gets_upright_tiles(engine: LocalEngine, corpus: Path) -> None:
    sheets, cues = storyboard(engine, corpus / "videos/video_rotation_90.mp4", "80x80:auto")
    assert (sheets[0].width, sheets[0].height) == (48, 80)
    assert rectangle(cues[0])[1] == (0, 0, 48, 80)


def test_a_mirroring_display_matrix_is_applied_to_the_tiles(engine: LocalEngine,
                                                            corpus: Path) -> None:
    plain, _ = storyboard(engine, corpus / "videos/sample.mp4", "90x90:10")
    mirrored, _ = storyboard(engine, corpus / "videos/sample_rotate_and_reflect.mp4",
                             "90x90:10")
    plain_tile, mirrored_tile = first_page(plain[0].data), first_page(mirrored[0].data)
    assert difference(mirrored_tile, plain_tile.rot("d270").flipver()) < 4
    assert difference(mirrored_tile, plain_tile.rot("d90")) > 20


def test_non_square_pixels_are_stretched_in_the_tiles(engine: LocalEngine,
                                                      corpus: Path) -> None:
    sheets, _ = storyboard(engine, corpus / "videos/h264_white_frame_sar_16_9.mp4",
                           "80x80:auto")
    assert (sheets[0].width, sheets[0].height) == (80, 34)  # 640x480 shown as 1138x480


@pytest.mark.parametrize("name", ["hdr10-av1.mp4", "hlg10-color-test.mp4"])
def test_hdr_tiles_are_tone_mapped_as_the_still_is(engine: LocalEngine, corpus: Path,
                                                   name: str) -> None:
    result = render(engine, corpus / "videos" / name, storyboard="80x80:auto",
                    sizes=[ThumbnailSize.parse("box:80x80")])
    still, sheet = result.thumbnails[0], of_kind(result, "storyboard")[0]
    # the first tile is the representative frame, within half an interval of 0 s
    tile = first_page(sheet.data).extract_area(0, 0, still.width, still.height)
    # compared at a quarter of the size, where the sheet's JPEG 4:2:0 no longer shows on
    # colour bars; untone-mapped, the difference would be above 30
    assert difference(tile.resize(0.25), first_page(still.data).resize(0.25)) < 6


def test_sheets_are_written_without_metadata(tmp_path: Path, corpus: Path) -> None:
    with av.open(str(corpus / "videos/sample.mp4")) as container:
        stream = container.streams.video[0]
        reader = FrameReader(container, stream)
        first = _representative_frame(reader, 1.0)
        painter = FramePainter(Fraction(1), DisplayTransform())
        sheet, _ = render_storyboard(reader, first, painter, StoryboardSpec(80, 80, 10.0),
                                     duration=1.0, source_fps=30, output=OutputSpec())
    image = pyvips.Image.new_from_buffer(sheet.data, "")
    assert not [field for field in image.get_fields() if field.startswith("exif")]
