"""Camera RAW files: the embedded preview when it covers the largest size, else the sensor data
demosaiced; upright by the RAW's own orientation; never a black thumbnail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.raw import covers, half_size_covers, render_raw
from media_worker.engines.sniff import sniff
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
from media_worker.types import ThumbnailSize
from tests.unit.raw_fixtures import make_dng, stored

SMALL = ThumbnailSize.parse_list("small:150x150")
MATCH = 12  # mean 8-bit difference of two renderings of the same picture, at most


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


@pytest.fixture(scope="module")
def portrait(corpus: Path) -> pyvips.Image:
    """An upright portrait photo (labelled top, left, right, bottom), 266x400."""
    path = corpus / "images" / "orientation" / "Portrait_0.jpg"
    return pyvips.Image.thumbnail(str(path), 400).crop(0, 0, 266, 400).copy_memory()


def render(engine: LocalEngine, path: Path, sizes: list[ThumbnailSize] = SMALL
           ) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), sizes,
                         OutputSpec(ThumbnailFormat.PNG))


def difference(result: RenderResult, expected: pyvips.Image) -> float:
    thumb = pyvips.Image.new_from_buffer(result.thumbnails[0].data, "")
    reference = expected.thumbnail_image(thumb.width, height=thumb.height, size="force")
    return float((thumb - reference).abs().avg())


# --- the two paths --------------------------------------------------------------------------
def test_a_preview_that_covers_the_largest_size_is_used(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    path = make_dng(tmp_path / "a.dng", portrait, preview=portrait)
    result = render(engine, path)
    assert result.metadata["rawSource"] == "embedded-preview"
    assert difference(result, portrait) < MATCH


def test_without_a_preview_the_sensor_data_is_demosaiced(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    result = render(engine, make_dng(tmp_path / "a.dng", portrait))
    assert result.metadata["rawSource"] == "demosaic"
    assert difference(result, portrait) < MATCH


def test_a_preview_smaller_than_the_largest_size_is_not_used(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    small = portrait.thumbnail_image(80)
    result = render(engine, make_dng(tmp_path / "a.dng", portrait, preview=small))
    assert result.metadata["rawSource"] == "demosaic"
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (100, 150)


def test_a_preview_of_another_framing_is_not_used() -> None:
    """A 16:9 preview of a 3:2 sensor picture is a crop, not the picture."""
    assert not covers((1920, 1080), (6000, 4000), (1280, 853))
    assert covers((1616, 1080), (6000, 4000), (1280, 853))


def test_the_demosaic_is_at_half_size_only_while_that_covers_the_largest_size() -> None:
    assert half_size_covers((6000, 4000), (1280, 853))
    assert not half_size_covers((2000, 1500), (1280, 960))


# --- upright --------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_demosaiced_raw_comes_out_upright(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path, orientation: int) -> None:
    path = make_dng(tmp_path / "a.dng", stored(portrait, orientation), orientation=orientation)
    result = render(engine, path)
    assert (result.metadata["width"], result.metadata["height"]) == (266, 400)
    assert result.metadata["orientation"] == orientation
    assert difference(result, portrait) < MATCH


def test_a_preview_stored_as_the_sensor_saw_it_is_turned_by_the_raws_orientation(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    """Immich #12720: the preview carries no orientation of its own; the RAW's tag decides."""
    sensor = stored(portrait, 6)
    result = render(engine, make_dng(tmp_path / "a.dng", sensor, orientation=6, preview=sensor))
    assert result.metadata["rawSource"] == "embedded-preview"
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (100, 150)
    assert difference(result, portrait) < MATCH


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_turned_preview_larger_than_the_largest_size_is_still_used(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path, orientation: int) -> None:
    """The preview is decoded sequentially and fitted to the largest size; turning it must not
    make libvips read it out of order (which fell back to the demosaic, silently)."""
    big = portrait.resize(4)  # 1064x1600, fitted to 1280 px: decoded sequentially
    sensor = stored(big, orientation)
    path = make_dng(tmp_path / "a.dng", sensor, orientation=orientation, preview=sensor)
    result = render(engine, path, ThumbnailSize.parse_list("large:1280x1280"))
    assert result.metadata["rawSource"] == "embedded-preview"
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (851, 1280)
    assert difference(result, portrait) < MATCH


def test_a_previews_own_exif_orientation_is_not_applied(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    sensor = stored(portrait, 6)
    path = make_dng(tmp_path / "a.dng", sensor, orientation=6, preview=sensor,
                    preview_orientation=3)
    result = render(engine, path)
    assert result.metadata["rawSource"] == "embedded-preview"
    assert difference(result, portrait) < MATCH


# --- metadata and limits --------------------------------------------------------------------
def test_a_dng_is_described_as_an_upright_image(
        engine: LocalEngine, portrait: pyvips.Image, tmp_path: Path) -> None:
    metadata = render(engine, make_dng(tmp_path / "a.dng", stored(portrait, 6),
                                       orientation=6)).metadata
    assert {key: metadata[key] for key in ("kind", "format", "mimeType", "width", "height")} == {
        "kind": "image", "format": "dng", "mimeType": "image/x-adobe-dng",
        "width": 266, "height": 400}
    assert metadata["placeholder"]["type"] == "blurhash"


def test_a_raw_over_the_pixel_limit_is_refused(portrait: pyvips.Image, tmp_path: Path) -> None:
    path = make_dng(tmp_path / "a.dng", portrait)
    with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
        render(LocalEngine(max_pixels=10_000, max_video_seconds=60), path)


class RecordingBudget:
    """Stands in for DecodeBudget: records what each decode asked for."""

    def __init__(self) -> None:
        self.admitted: list[int] = []

    @contextmanager
    def admit(self, megabytes: int) -> Iterator[None]:
        self.admitted.append(megabytes)
        yield


def test_a_demosaic_holds_its_share_of_the_decode_budget(tmp_path: Path) -> None:
    xyz = pyvips.Image.xyz(2400, 1600)
    grey = (xyz[0] * 200 / 2400 + 20).cast("uchar")
    picture = grey.bandjoin([grey, grey]).copy(interpretation="srgb").copy_memory()
    path = make_dng(tmp_path / "big.dng", picture)
    budget = RecordingBudget()
    result = render_raw(path, sniff(path), SMALL, OutputSpec(), max_pixels=100_000_000,
                        budget=budget)  # type: ignore[arg-type]
    assert result.metadata["rawSource"] == "demosaic"
    assert len(budget.admitted) == 1
    assert budget.admitted[0] >= 16


# --- the corpus's damaged and unsupported RAWs ----------------------------------------------
def test_a_raw_libraw_decodes_to_black_fails_instead_of_a_black_thumbnail(
        engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(CorruptMediaError, match="DNG: the pixel data is missing"):
        render(engine, corpus / "images" / "malformed" / "IMG_1361.dng")


def test_a_gopro_gpr_is_unsupported_by_name(engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(UnsupportedMediaError, match="GoPro GPR"):
        render(engine, corpus / "images" / "raw" / "GOPR0024.GPR")


def test_a_cut_cr3_with_only_a_tiny_preview_fails_readably(
        engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(CorruptMediaError, match="cannot decode CR3: the sensor data is missing"):
        render(engine, corpus / "images" / "malformed" / "file-type-fixture.cr3")


def test_a_cut_arw_libraw_refuses_fails_readably(engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(UnsupportedMediaError, match="unsupported ARW: LibRaw cannot read it"):
        render(engine, corpus / "images" / "malformed" / "file-type-fixture-sony-zv-e10.arw")
