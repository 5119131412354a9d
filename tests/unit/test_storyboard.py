"""Storyboard sheets and their WebVTT: every cue points inside its sheet, times are in order."""

from __future__ import annotations

import io

import pytest
import webvtt

from media_worker.engines.storyboard import SheetLayout
from media_worker.engines.storyboard import webvtt as storyboard_vtt
from media_worker.renditions import StoryboardSpec


def parsed(text: str) -> list[webvtt.Caption]:
    return list(webvtt.from_buffer(io.StringIO(text)))


@pytest.mark.parametrize("duration", [4.0, 37.5, 600.0, 7200.0])
def test_every_cue_points_inside_its_sheet(duration: float) -> None:
    spec = StoryboardSpec(160, 90)
    times = spec.tile_times(duration)
    layout = SheetLayout(160, 90, len(times))
    cues = parsed(storyboard_vtt(layout, times, duration))
    assert len(cues) == len(times)
    for cue in cues:
        name, fragment = cue.text.split("#xywh=")
        sheet = int(name.removeprefix("storyboard-").removesuffix(".jpg"))
        x, y, w, h = map(int, fragment.split(","))
        assert 0 <= sheet < layout.sheets
        assert x + w <= layout.columns * 160
        assert y + h <= layout.rows_on(sheet) * 90


def test_cues_follow_each_other_to_the_end_of_the_video() -> None:
    times = [0.0, 10.0, 20.0]
    cues = parsed(storyboard_vtt(SheetLayout(160, 90, 3), times, 25.0))
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:00.000", "00:00:10.000"), ("00:00:10.000", "00:00:20.000"),
        ("00:00:20.000", "00:00:25.000")]


def test_sheets_hold_at_most_ten_by_ten_tiles() -> None:
    layout = SheetLayout(160, 90, 250)
    assert (layout.columns, layout.per_sheet, layout.sheets) == (10, 100, 3)
    assert layout.rows_on(2) == 5
    assert layout.place(100).sheet == 1
    assert layout.place(101).x == 160


def test_one_tile_makes_one_sheet_of_one_tile() -> None:
    layout = SheetLayout(160, 90, 1)
    assert (layout.columns, layout.sheets, layout.rows_on(0)) == (1, 1, 1)
