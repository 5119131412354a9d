"""The metadata keys read from the decoded picture: what PLACEHOLDERS chooses, and the pHash."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import pyvips

from media_worker.engines.phash import phash_of
from media_worker.engines.placeholders.facts import parse_placeholders, picture_metadata
from media_worker.engines.placeholders.thumbhash import thumbhash_to_rgba

ALL = frozenset({"blurhash", "thumbhash", "colors"})


def photo_like(width: int = 640, height: int = 480) -> pyvips.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1)
    return pyvips.Image.new_from_array(pixels.astype(np.uint8), interpretation="srgb")


def test_every_kind_gives_its_keys_and_the_phash_is_always_there() -> None:
    facts = picture_metadata(photo_like(), ALL)
    assert set(facts) == {"thumbhash", "dominantColor", "palette", "phash"}
    assert facts["dominantColor"] == facts["palette"][0]
    assert len(facts["phash"]) == 16


def test_only_the_kinds_asked_for_are_computed() -> None:
    assert set(picture_metadata(photo_like(), frozenset({"blurhash"}))) == {"phash"}
    assert set(picture_metadata(photo_like(), frozenset({"thumbhash"}))) == {"thumbhash",
                                                                            "phash"}


def test_the_phash_is_the_pictures_own() -> None:
    picture = photo_like()
    assert picture_metadata(picture, frozenset())["phash"] == phash_of(picture).hex


def test_the_thumbhash_keeps_the_pictures_aspect() -> None:
    painted = thumbhash_to_rgba(base64.b64decode(picture_metadata(photo_like(), ALL)["thumbhash"]))
    height, width = painted.shape[:2]
    assert width > height


def test_a_picture_transparent_everywhere_has_no_colours_and_no_phash() -> None:
    empty = pyvips.Image.black(200, 100, bands=4).copy(interpretation="srgb")
    assert set(picture_metadata(empty, ALL)) == {"thumbhash"}


@pytest.mark.parametrize(("value", "kinds"), [
    ("blurhash,thumbhash,colors", {"blurhash", "thumbhash", "colors"}),
    (" Colors , blurhash ", {"blurhash", "colors"}),
    ("", set()),
])
def test_placeholders_setting_is_a_set_of_known_kinds(value: str, kinds: set[str]) -> None:
    assert parse_placeholders(value) == kinds


def test_an_unknown_placeholder_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown placeholder webp; choose from blurhash"):
        parse_placeholders("blurhash,webp")
