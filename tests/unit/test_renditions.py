"""The renditions a job asks for: size grammar, profiles, focus, preview and storyboard specs."""

from __future__ import annotations

import pytest

from media_worker.config import SettingsError, load_settings
from media_worker.errors import PermanentError
from media_worker.renditions import (
    Focus,
    PreviewSpec,
    StoryboardSpec,
    parse_focus,
    parse_preview,
    parse_profiles,
    parse_storyboard,
    sizes_for,
)
from media_worker.types import FitMode, ThumbnailSize


def test_a_size_takes_its_options_in_any_order() -> None:
    assert ThumbnailSize.parse("avatar:256x256:webp:82:smart") == ThumbnailSize.parse(
        "avatar:256x256:smart:webp:82")
    size = ThumbnailSize.parse("og:1200x630:cover:jpeg:85")
    assert (size.mode, size.format, size.quality, size.animated) == (
        FitMode.COVER, "jpeg", 85, False)


def test_a_size_without_a_mode_fits_inside_its_box() -> None:
    assert ThumbnailSize.parse("small:150x150").mode is FitMode.FIT


def test_an_animated_size_may_ask_for_gif() -> None:
    size = ThumbnailSize.parse("loop:320x320:animated:gif")
    assert (size.animated, size.format) == (True, "gif")


@pytest.mark.parametrize(("text", "complaint"), [
    ("x:10x10:smart:cover", "mode twice"),
    ("x:10x10:tiff", "'tiff' is not a mode"),
    ("x:10x10:gif", "gif is for animated sizes"),
    ("x:10x10:0", "quality"),
    ("x10x10", "is not name:WIDTHxHEIGHT"),
])
def test_a_bad_size_is_refused_saying_why(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        ThumbnailSize.parse(text)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "avif"])
def test_an_animated_size_refuses_a_format_that_cannot_animate(fmt: str) -> None:
    with pytest.raises(ValueError, match=f"an animation cannot be {fmt}; animated sizes are "
                                         "webp or gif"):
        ThumbnailSize.parse(f"loop:320x320:{fmt}:animated")


def test_a_size_prints_as_it_parses() -> None:
    for text in ("small:150x150", "a:256x256:smart:webp:82", "g:64x64:gif:animated"):
        assert str(ThumbnailSize.parse(text)) == text


def test_profiles_are_named_size_lists() -> None:
    profiles = parse_profiles('{"avatar": "a64:64x64:cover,a256:256x256:smart"}')
    assert [size.name for size in profiles["avatar"]] == ["a64", "a256"]
    assert profiles["avatar"][1].mode is FitMode.SMART


def test_a_bad_profile_names_itself() -> None:
    with pytest.raises(ValueError, match="profile 'post'"):
        parse_profiles('{"post": "small"}')


def test_a_job_without_a_profile_gets_the_default_sizes() -> None:
    default = ThumbnailSize.parse_list("small:150x150")
    assert sizes_for(None, {}, default) == default


def test_an_unknown_profile_fails_the_job_permanently() -> None:
    with pytest.raises(PermanentError, match="unknown thumbnail profile 'x'"):
        sizes_for("x", {}, [])


def test_focus_is_two_fractions() -> None:
    assert parse_focus({"x": 0.25, "y": 1}) == Focus(0.25, 1.0)
    assert parse_focus(None) is None


@pytest.mark.parametrize("raw", [{"x": 1.5, "y": 0}, {"x": "0.5", "y": 0.5}, {"x": 0.5},
                                 [0.5, 0.5], {"x": True, "y": 0.5}, {"x": 0, "y": 0, "z": 1}])
def test_an_invalid_focus_fails_the_job_naming_focus(raw: object) -> None:
    with pytest.raises(PermanentError, match="focus"):
        parse_focus(raw)


def test_a_preview_spec_reads_box_seconds_rate_and_format() -> None:
    assert parse_preview("480x480:3:12:webp") == PreviewSpec(480, 480, 3.0, 12, "webp")
    assert parse_preview("320x240:2:mp4") == PreviewSpec(320, 240, 2.0, 12, "mp4")
    assert parse_preview("off") is None


def test_a_storyboard_spec_reads_tile_and_interval() -> None:
    assert parse_storyboard("160x90:auto") == StoryboardSpec(160, 90, None)
    assert parse_storyboard("160x90:10") == StoryboardSpec(160, 90, 10.0)


def test_auto_storyboards_take_about_a_hundred_tiles_at_least_a_second_apart() -> None:
    auto = StoryboardSpec(160, 90)
    assert len(auto.tile_times(600)) == 100
    assert auto.tile_times(30) == [float(second) for second in range(30)]


def test_a_video_shorter_than_one_interval_gives_one_tile() -> None:
    assert StoryboardSpec(160, 90, 10.0).tile_times(4.0) == [0.0]


@pytest.mark.parametrize("variable", ["VIDEO_STORYBOARD", "VIDEO_PREVIEW"])
def test_the_imagor_engine_refuses_what_its_protocol_cannot_express_at_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str,
) -> None:
    monkeypatch.setenv("THUMBNAIL_ENGINE", "imagorvideo")
    monkeypatch.setenv(variable, "160x90:auto" if variable == "VIDEO_STORYBOARD" else "64x64:2")
    with pytest.raises(SettingsError, match=f"{variable} needs THUMBNAIL_ENGINE=local"):
        load_settings()


def test_the_imagor_engine_refuses_animated_sizes_naming_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("THUMBNAIL_ENGINE", "imagorvideo")
    monkeypatch.setenv("THUMBNAIL_SIZES", "small:150x150,loop:320x320:animated")
    with pytest.raises(SettingsError, match=r"animated sizes \(loop\)"):
        load_settings()
