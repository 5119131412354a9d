"""ThumbHash: the same bytes as Evan Wallace's reference `thumbhash.js`, and what they paint.

The vectors in tests/data/thumbhash/ were made by the reference itself (make_vectors.py there
says how): photos and made-up pictures, landscape and portrait, opaque and transparent, and
one that does not change down its height, whose vertical AC terms are rounding noise that
the reference stretches to 4 bits: only cosines exact to V8's last bit give its bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.engines.placeholders.jscos import js_cos
from media_worker.engines.placeholders.thumbhash import (
    aspect_ratio,
    rgba_to_thumbhash,
    thumbhash_of,
    thumbhash_to_rgba,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "thumbhash"
REFERENCE = json.loads((DATA / "vectors.json").read_text())
VECTORS = REFERENCE["vectors"]


def picture(name: str) -> np.ndarray:
    image = pyvips.Image.new_from_file(str(DATA / VECTORS[name]["input"]))
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands))


def reference_hash(name: str) -> bytes:
    return base64.b64decode(VECTORS[name]["hash"])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_hash_is_byte_for_byte_the_references(name: str) -> None:
    assert rgba_to_thumbhash(picture(name)) == reference_hash(name)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_decoder_paints_what_the_reference_paints(name: str) -> None:
    vector = VECTORS[name]
    painted = np.frombuffer(base64.b64decode(vector["rgba"]), dtype=np.uint8)
    expected = painted.reshape(vector["h"], vector["w"], 4)
    assert np.array_equal(thumbhash_to_rgba(reference_hash(name)), expected)


def test_every_cosine_a_thumbhash_needs_is_node_s_to_the_last_bit() -> None:
    cosines = [js_cos(value) for n in range(1, 101) for c in range(8) for i in range(n)
               for value in (math.pi / n * c * (i + 0.5), math.pi / n * (i + 0.5) * c)]
    digest = hashlib.sha256(np.array(cosines, dtype="<f8").tobytes()).hexdigest()
    assert digest == REFERENCE["cosines_sha256"]


def test_js_cos_refuses_what_it_does_not_reduce() -> None:
    with pytest.raises(ValueError, match="covers"):
        js_cos(1e7)


def test_transparency_is_kept() -> None:
    painted = thumbhash_to_rgba(rgba_to_thumbhash(picture("portrait-alpha-made")))
    assert painted[0, 0, 3] < 128  # the transparent corner
    assert painted[-1, -1, 3] == 255


def test_hash_keeps_landscape_and_portrait() -> None:
    assert aspect_ratio(reference_hash("landscape-opaque")) > 1
    assert aspect_ratio(reference_hash("portrait-opaque")) < 1


def test_a_picture_larger_than_100_pixels_is_refused_as_the_reference_does() -> None:
    with pytest.raises(ValueError, match="doesn't fit"):
        rgba_to_thumbhash(np.zeros((101, 50, 4), dtype=np.uint8))


def test_thumbhash_of_a_large_picture_paints_what_its_100_pixel_copy_paints() -> None:
    # thumbhash_of hashes a smaller copy than the reference's 100 px: the painting is the same
    image = pyvips.Image.new_from_file(str(DATA / "landscape-opaque.png"))
    large = image.resize(8, kernel="linear")
    ours = thumbhash_to_rgba(base64.b64decode(thumbhash_of(large))).astype(int)
    theirs = thumbhash_to_rgba(reference_hash("landscape-opaque"))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1


def test_thumbhash_of_a_grey_picture_paints_that_grey() -> None:
    grey = pyvips.Image.black(40, 30).linear(1, 90).cast("uchar").copy(interpretation="b-w")
    painted = thumbhash_to_rgba(base64.b64decode(thumbhash_of(grey)))
    # within the 6-bit quantisation of the colour terms (0 is coded as 32/31.5 - 1)
    assert np.abs(painted[:, :, :3].astype(int) - 90).max() <= 5
    assert (painted[:, :, 3] == 255).all()
