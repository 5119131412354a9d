"""Fidelity against libvips' own `vipsthumbnail` (Debian libvips-tools): our thumbnails of the
same upright, colour-managed picture reach SSIM ≥ 0.95."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

BOX = ThumbnailSize(name="medium", width=480, height=480)
FILES = [
    "images/orientation/Landscape_6.jpg",
    "images/orientation/Portrait_7.jpg",
    "images/camera/DSCN0010.jpg",
    "images/camera/canon_hdr_NO.jpg",
    "images/formats/jpeg/xmp_test.jpg",  # Adobe RGB
    "images/formats/jpeg/Channel_digital_image_CMYK_color.jpg",
    "images/formats/png/pil123rgba.png",
    "images/formats/webp/flower.webp",
    "images/formats/tiff/hopper.iccprofile.tif",
]


def ssim(first: pyvips.Image, second: pyvips.Image) -> float:
    """Mean structural similarity of the luma of two pictures (Gaussian window, σ = 1.5)."""
    width, height = min(first.width, second.width), min(first.height, second.height)
    a, b = (_luma(image).crop(0, 0, width, height) for image in (first, second))
    mu_a, mu_b = a.gaussblur(1.5), b.gaussblur(1.5)
    var_a = (a * a).gaussblur(1.5) - mu_a * mu_a
    var_b = (b * b).gaussblur(1.5) - mu_b * mu_b
    cov = (a * b).gaussblur(1.5) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((mu_a * mu_b * 2 + c1) * (cov * 2 + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return float(index.avg())


def _luma(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    return image.colourspace("b-w").cast("float")


@pytest.fixture(scope="module")
def vipsthumbnail() -> str:
    path = shutil.which("vipsthumbnail")
    if path is None:
        pytest.skip("vipsthumbnail not installed (Debian package libvips-tools)")
    return path


@pytest.mark.parametrize("name", FILES)
def test_thumbnail_matches_vipsthumbnail(
    name: str, corpus: Path, vipsthumbnail: str, tmp_path: Path
) -> None:
    original = corpus / name
    reference_path = tmp_path / "reference.png"
    never_upscale = f"{BOX.width}x{BOX.height}>"
    subprocess.run([vipsthumbnail, str(original), "--size", never_upscale,
                    "--export-profile", "srgb", "-o", str(reference_path)],
                   check=True, capture_output=True, timeout=60)
    engine = LocalEngine(max_pixels=100_000_000, max_video_seconds=60)
    [ours] = engine.render(SourceMedia(original, "b", "k"), [BOX],
                           OutputSpec(ThumbnailFormat.PNG, 90)).thumbnails
    reference = pyvips.Image.new_from_file(str(reference_path))
    assert abs(ours.width - reference.width) <= 1
    assert abs(ours.height - reference.height) <= 1
    assert ssim(pyvips.Image.new_from_buffer(ours.data, ""), reference) >= 0.95
