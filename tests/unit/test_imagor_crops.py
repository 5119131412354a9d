"""`cover` and `smart` sizes as imagor-protocol URLs (imagor, imagorvideo, Thumbor)."""

from __future__ import annotations

import pytest

from media_worker.engines.imagor.crops import expected_size, size_request
from media_worker.engines.imagor.url import Filter, build_path, focal_region
from media_worker.renditions import Focus
from media_worker.types import Crop, ThumbnailSize

FORMAT = (Filter("format", "webp"),)
IMAGE = "uploads/photo.jpg"


def path_of(size: str, upright: tuple[int, int] | None = (4000, 3000),
            focus: Focus | None = None) -> tuple[str, Crop | None]:
    params, crop = size_request(IMAGE, ThumbnailSize.parse(size), upright, focus, FORMAT)
    return build_path(params), crop


def test_fit_stays_fit_in_without_a_crop() -> None:
    assert path_of("s:150x150") == ("fit-in/150x150/filters:format(webp)/uploads/photo.jpg",
                                    None)


def test_cover_is_a_plain_box_centred_with_its_crop_recorded() -> None:
    path, crop = path_of("og:1200x630:cover")
    assert path == "1200x630/filters:format(webp)/uploads/photo.jpg"
    assert crop == Crop(x=0, y=450, width=4000, height=2100)


def test_cover_with_a_focus_adds_a_focal_region_in_upright_pixels() -> None:
    path, crop = path_of("sq:256x256:cover", focus=Focus(0.9, 0.25))
    assert path == "256x256/filters:format(webp):focal(3600x750:3601x751)/uploads/photo.jpg"
    assert crop == Crop(x=1000, y=0, width=3000, height=3000)  # clamped at the right edge


def test_smart_asks_the_services_detector_and_records_no_crop() -> None:
    path, crop = path_of("sq:256x256:smart", focus=Focus(0.9, 0.25))  # focus: cover only
    assert path == "256x256/smart/filters:format(webp)/uploads/photo.jpg"
    assert crop is None


def test_a_small_original_asks_for_the_crop_never_an_upscale() -> None:
    assert path_of("og:1200x630:cover", upright=(100, 68))[0].startswith("100x52/")
    assert path_of("sq:256x256:smart", upright=(100, 68))[0].startswith("68x68/smart/")


def test_an_unknown_original_size_asks_for_the_box() -> None:
    assert path_of("og:1200x630:cover", upright=None) == (
        "1200x630/filters:format(webp)/uploads/photo.jpg", None)


def test_answers_are_checked_against_the_box_or_the_crop() -> None:
    assert expected_size(4000, 3000, ThumbnailSize.parse("og:1200x630:cover")) == (1200, 630)
    assert expected_size(100, 68, ThumbnailSize.parse("og:1200x630:smart")) == (100, 52)
    assert expected_size(4000, 3000, ThumbnailSize.parse("s:150x150")) == (150, 112)


def test_focal_regions_are_whole_pixels() -> None:
    assert str(focal_region(1, 2, 3, 4)) == "focal(1x2:3x4)"
    with pytest.raises(ValueError, match="not a region"):
        focal_region(3, 2, 1, 4)
    with pytest.raises(ValueError, match="escaping"):
        Filter("format", "1x2:3x4")  # the colon stays reserved to focal's region
