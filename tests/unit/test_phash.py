"""The perceptual hash: imagehash's DCT pHash, and what stays near whatever is done to a photo.

The corpus photos are decoded as a job decodes them (upright, shrunk to its largest
thumbnail, 1280 px here): the hash is read from that picture.
"""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
import pyvips
from PIL import Image, ImageOps

from media_worker.engines.phash import (
    PerceptualHash,
    hamming,
    phash_of,
    phash_of_grey,
    phash_of_pixels,
)

LARGEST = 1280
NEAR = 6  # issue 16: the same photo re-encoded, resized or rotated upright is within 6
PHOTOS = ["images/camera/prairie_falcon.jpg", "images/camera/DSCN0010.jpg",
          "images/camera/canon_hdr_NO.jpg", "images/orientation/Landscape_0.jpg"]


def decoded(source: str | bytes) -> pyvips.Image:
    """The upright picture a job hashes: its largest thumbnail, decoded once."""
    if isinstance(source, bytes):
        return pyvips.Image.thumbnail_buffer(source, LARGEST).copy_memory()
    return pyvips.Image.thumbnail(source, LARGEST).copy_memory()


def test_hash_of_a_32px_grey_picture_is_imagehashs_bit_for_bit() -> None:
    generator = np.random.default_rng(16)
    for _ in range(20):
        grey = generator.integers(0, 256, (32, 32), dtype=np.uint8)
        assert phash_of_grey(grey).hex == str(imagehash.phash(Image.fromarray(grey)))


@pytest.mark.parametrize(("height", "width"), [(64, 85), (300, 64), (40, 40), (16, 20)])
def test_hash_of_an_rgb_array_is_imagehashs_of_it_bit_for_bit(height: int, width: int) -> None:
    generator = np.random.default_rng(height * width)
    smooth = generator.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    pixels = np.kron(smooth, np.ones((4, 4, 1), dtype=np.uint8))[:height, :width]
    theirs = str(imagehash.phash(Image.fromarray(pixels)))
    assert phash_of_pixels(pixels).hex == theirs


@pytest.mark.parametrize("photo", [*PHOTOS, "images/formats/jpeg/craft-beer.jpg",
                                   "images/formats/png/hopper.png"])
def test_hash_of_a_photo_is_within_2_of_imagehashs(corpus: Path, photo: str) -> None:
    # the same maths; only the resize to 32x32 and Pillow's rounding to 8 bits differ
    with Image.open(corpus / photo) as original:
        theirs = str(imagehash.phash(ImageOps.exif_transpose(original)))
    assert hamming(phash_of(decoded(str(corpus / photo))), theirs) <= 2


@pytest.mark.parametrize("photo", PHOTOS)
def test_the_same_photo_reencoded_at_jpeg_quality_60_is_near(corpus: Path, photo: str) -> None:
    original = pyvips.Image.new_from_file(str(corpus / photo))
    reencoded = original.jpegsave_buffer(Q=60, keep=1)  # ForeignKeep.EXIF: orientation kept
    distance = hamming(phash_of(decoded(str(corpus / photo))), phash_of(decoded(reencoded)))
    assert distance <= NEAR


@pytest.mark.parametrize("photo", PHOTOS)
def test_the_same_photo_at_half_size_is_near(corpus: Path, photo: str) -> None:
    upright = pyvips.Image.new_from_file(str(corpus / photo)).autorot()
    half = upright.resize(0.5).pngsave_buffer()
    distance = hamming(phash_of(decoded(str(corpus / photo))), phash_of(decoded(half)))
    assert distance <= NEAR


@pytest.mark.parametrize("series", ["Landscape", "Portrait"])
def test_every_exif_orientation_shown_upright_is_near_the_untagged_photo(
        corpus: Path, series: str) -> None:
    folder = corpus / "images" / "orientation"
    reference = phash_of(decoded(str(folder / f"{series}_0.jpg")))
    distances = {n: hamming(reference, phash_of(decoded(str(folder / f"{series}_{n}.jpg"))))
                 for n in range(1, 9)}
    assert max(distances.values()) <= NEAR, distances


def test_a_transparent_picture_is_hashed_as_seen_on_white() -> None:
    ys, xs = np.mgrid[0:64, 0:64]
    junk = np.stack([xs * 4, ys * 4, (xs * ys) % 256], axis=-1).astype(np.uint8)
    alpha = np.where(xs > 20, 255, 0).astype(np.uint8)[..., None]
    transparent = pyvips.Image.new_from_array(np.concatenate([junk, alpha], axis=-1),
                                              interpretation="srgb")
    on_white = transparent.flatten(background=[255, 255, 255])
    assert phash_of(transparent) == phash_of(on_white)


@pytest.mark.parametrize("colour", [[0, 0, 0], [255, 255, 255], [200, 30, 30]])
def test_a_flat_picture_has_no_hash(colour: list[int]) -> None:
    flat = pyvips.Image.black(300, 200, bands=3).new_from_image(colour)
    assert phash_of(flat.cast("uchar").copy(interpretation="srgb")) is None


def test_a_picture_transparent_everywhere_has_no_hash() -> None:
    assert phash_of(pyvips.Image.black(64, 64, bands=4).copy(interpretation="srgb")) is None


def test_hex_is_16_digits_and_signed_is_the_same_bits_as_a_bigint() -> None:
    top_bit = PerceptualHash(1 << 63 | 5)
    assert top_bit.hex == "8000000000000005"
    assert top_bit.signed == -(1 << 63) + 5
    assert PerceptualHash(0xFF).hex == "00000000000000ff"
    assert PerceptualHash(0xFF).signed == 0xFF


def test_parse_reads_hex_and_signed_and_unsigned_integers() -> None:
    value = PerceptualHash(0xFEDCBA9876543210)
    assert PerceptualHash.parse(value.hex) == value
    assert PerceptualHash.parse(value.signed) == value
    assert PerceptualHash.parse(value.bits) == value


def test_parse_refuses_more_than_64_bits() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        PerceptualHash.parse("1" + "0" * 16)


def test_hamming_counts_differing_bits_of_any_form() -> None:
    assert hamming("0000000000000000", "000000000000000f") == 4
    assert hamming(-1, PerceptualHash(0)) == 64
    assert hamming(PerceptualHash(0b1010), 0b0110) == 2
