"""HDR_OUTPUT=gainmap: JPEG sizes of an HDR original are Ultra HDR JPEGs whose SDR base is the
SDR thumbnail and whose gain map brings it back to the HDR picture; nothing else changes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color import gainmap
from media_worker.engines.color.signal import HdrPicture, Signal, hdr_renditions
from media_worker.engines.encode import render_sizes
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail, SourceMedia
from media_worker.types import ThumbnailSize

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480:webp,large:1280x1280")
GAINMAP_JPEG = OutputSpec(format=ThumbnailFormat.JPEG, quality=85, hdr_output="gainmap")
SDR_JPEG = OutputSpec(format=ThumbnailFormat.JPEG, quality=85)
LUMA = np.array([0.2126, 0.7152, 0.0722])


def pq_picture(height: int = 480, width: int = 640) -> np.ndarray:
    """PQ code values: smooth BT.2020 gradients (50-600 nits) and a 4,000-nit highlight."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    code = np.stack([0.45 + 0.3 * x, 0.4 + 0.35 * y, 0.5 + 0.2 * x * y], axis=-1)
    code[height // 5: height // 2, width // 6: width // 2] = 0.9
    return code.astype(np.float32)


def renditions(code: np.ndarray, primaries: str = "bt2020") -> tuple[pyvips.Image, HdrPicture]:
    sdr, hdr = hdr_renditions(code, Signal(transfer="pq", primaries=primaries))
    return pyvips.Image.new_from_array(sdr, interpretation="srgb"), hdr


def resized(hdr: HdrPicture, width: int, height: int) -> np.ndarray:
    """The HDR picture at a thumbnail's size, averaged in light (what the gain map targets)."""
    image = pyvips.Image.new_from_array(hdr.linear)
    image = image.resize(width / image.width, vscale=height / image.height, kernel="linear")
    return image.numpy().reshape(height, width, 3)


def stops_off(shown: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|log2| of the luminance ratio, with a floor in the blacks (1% of SDR white)."""
    return np.abs(np.log2((shown @ LUMA + 0.01) / (truth @ LUMA + 0.01)))


def mean_delta_e(a: pyvips.Image, b: pyvips.Image) -> float:
    def lab(image: pyvips.Image) -> np.ndarray:
        return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(image.numpy()[..., :3] / 255.0))
    return float(colour.delta_E(lab(a), lab(b), method="CIE 2000").mean())


def decoded(thumb: RenderedThumbnail) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(thumb.data, "")


def test_jpeg_sizes_of_an_hdr_original_are_ultra_hdr_with_the_sdr_thumbnail_as_base() -> None:
    largest, hdr = renditions(pq_picture())
    with_map = render_sizes(largest, SIZES, GAINMAP_JPEG, hdr=hdr)
    sdr_only = render_sizes(largest, SIZES, SDR_JPEG, hdr=hdr)
    for thumb, plain in zip(with_map, sdr_only, strict=True):
        assert (thumb.width, thumb.height) == (plain.width, plain.height)
        if thumb.format != "jpeg":  # the WebP size stays SDR, byte for byte
            assert thumb.data == plain.data
            continue
        image = pyvips.Image.uhdrload_buffer(thumb.data)
        for field in ("gainmap-data", "gainmap-max-content-boost", "gainmap-min-content-boost",
                      "gainmap-gamma", "gainmap-offset-sdr", "gainmap-hdr-capacity-max"):
            assert image.get_typeof(field), field
        assert image.get("gainmap-max-content-boost")[0] > 4  # the highlight is far above SDR
        base = pyvips.Image.jpegload_buffer(thumb.data)  # what an SDR-only viewer shows
        assert mean_delta_e(base, decoded(plain)) < 1.0
        map_jpeg = pyvips.Image.new_from_buffer(image.get("gainmap-data"), "")
        assert (map_jpeg.width, map_jpeg.height) == gainmap.gain_map_size(thumb.width,
                                                                          thumb.height)
        assert map_jpeg.bands == 1


def test_applying_the_gain_map_gives_back_the_hdr_picture() -> None:
    largest, hdr = renditions(pq_picture())
    for thumb in render_sizes(largest, SIZES, GAINMAP_JPEG, hdr=hdr):
        if thumb.format != "jpeg":
            continue
        truth = resized(hdr, thumb.width, thumb.height)
        shown = pyvips.Image.uhdrload_buffer(thumb.data).uhdr2scRGB().numpy()  # libvips' decode
        off = stops_off(shown, truth)
        assert float(np.median(off)) < 0.05, thumb.size.name  # 3.5%
        # The highlight's edge weighs most: a quarter-size map blurs a 40x step over 4 px
        # (0.09 stops on average at 150 px, 0.04 at 640 px).
        assert float(off.mean()) < 0.15, thumb.size.name
        assert shown.max() == pytest.approx(truth.max(), rel=0.1)


def test_our_own_application_of_the_metadata_agrees_with_libvips() -> None:
    largest, hdr = renditions(pq_picture(240, 320))
    [thumb] = render_sizes(largest, ThumbnailSize.parse_list("s:320x320"), GAINMAP_JPEG, hdr=hdr)
    image = pyvips.Image.uhdrload_buffer(thumb.data)
    code = pyvips.Image.new_from_buffer(image.get("gainmap-data"), "").numpy()
    meta = gainmap.GainMap(code, image.get("gainmap-min-content-boost")[0],
                           image.get("gainmap-max-content-boost")[0])
    base = image.colourspace("scrgb").resize(code.shape[1] / image.width,
                                             vscale=code.shape[0] / image.height)
    ours = gainmap.apply(base.numpy(), meta)
    theirs = image.uhdr2scRGB().resize(code.shape[1] / image.width,
                                       vscale=code.shape[0] / image.height).numpy()
    assert float(np.median(stops_off(ours, theirs))) < 0.05


def test_a_flat_picture_still_gets_a_valid_map() -> None:
    largest, hdr = renditions(np.full((64, 64, 3), 0.5, dtype=np.float32))
    [thumb] = render_sizes(largest, ThumbnailSize.parse_list("s:64x64"), GAINMAP_JPEG, hdr=hdr)
    image = pyvips.Image.uhdrload_buffer(thumb.data)
    assert image.get("gainmap-max-content-boost")[0] > image.get("gainmap-min-content-boost")[0]
    shown = image.uhdr2scRGB().numpy()
    assert float(np.median(stops_off(shown, hdr.linear))) < 0.05


def test_no_hdr_picture_means_a_plain_jpeg() -> None:
    largest, _ = renditions(pq_picture(120, 160))
    [thumb] = render_sizes(largest, ThumbnailSize.parse_list("s:160x160"), GAINMAP_JPEG)
    image = decoded(thumb)
    assert image.get("vips-loader") == "jpegload_buffer"
    assert not image.get_typeof("gainmap-data")


def test_an_sdr_original_with_gainmap_set_gives_a_plain_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    pyvips.Image.black(300, 200, bands=3).linear(1, 120).cast("uchar").jpegsave(str(path))
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    result = engine.render(SourceMedia(path, "b", "k"), ThumbnailSize.parse_list("s:150x150"),
                           GAINMAP_JPEG)
    [thumb] = result.thumbnails
    assert thumb.format == "jpeg"
    image = decoded(thumb)
    assert image.get("vips-loader") == "jpegload_buffer"
    assert not image.get_typeof("gainmap-data")
    assert b"urn:iso:std:iso:ts:21496" not in thumb.data
    assert b"MPF\x00" not in thumb.data


def test_a_corpus_pq_avif_round_trips(corpus: Path) -> None:
    """The BT.2020 PQ test picture of libavif, decoded to code values without HDR handling."""
    path = corpus / "images/hdr/colors_wcg_hdr_rec2020.avif"
    code = pyvips.Image.new_from_file(str(path)).numpy().astype(np.float32) / 65535
    largest, hdr = renditions(code[..., :3])
    [thumb] = render_sizes(largest, ThumbnailSize.parse_list("s:200x200"), GAINMAP_JPEG,
                           hdr=hdr)
    shown = pyvips.Image.uhdrload_buffer(thumb.data).uhdr2scRGB().numpy()
    off = stops_off(shown, hdr.linear)
    assert float(np.median(off)) < 0.05
    assert float(off.mean()) < 0.1


def test_nothing_of_the_originals_metadata_leaves_in_an_ultra_hdr_jpeg(corpus: Path) -> None:
    photo = pyvips.Image.new_from_file(str(corpus / "images/camera/iphone_hdr_YES.jpg"))
    assert photo.get_typeof("exif-data")  # camera, GPS position
    sdr = photo.thumbnail_image(320).copy_memory()
    stops = pyvips.Image.new_from_array(np.ones((sdr.height, sdr.width), dtype=np.float32))
    data = gainmap.ultra_hdr_jpeg(sdr, stops, 80)
    assert b"Apple" not in data
    assert b"iPhone" not in data
    fields = pyvips.Image.jpegload_buffer(data).get_fields()
    assert not [name for name in fields if "GPS" in name or name.endswith("-Make")]
