"""A camera RAW's `takenAt`, `camera` and `exposure` (and, under METADATA_GPS=keep, `gps`), as a
JPEG's: from pidng DNGs through the engine on both paths, from the header of every other RAW
format, from the corpus's cut camera files, and never a failed job for broken EXIF."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import pyvips
import rawpy

from media_worker.config import ThumbnailFormat
from media_worker.engines.capture import Capture
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.raw_exif import jpeg_exif, raw_capture
from media_worker.engines.sniff import sniff
from media_worker.types import ThumbnailSize
from tests.unit.raw_fixtures import (
    EXIF_IFD,
    SHOT,
    SHOT_FACTS,
    TIFF_RAWS,
    Shot,
    make_dng,
    raw_header,
    stored,
)

SMALL = ThumbnailSize.parse_list("small:150x150")
PARIS = Shot(gps=(48.858222, 2.2945, 35.5))
PARIS_GPS = {"lat": 48.858222, "lon": 2.2945, "alt": 35.5}
CAPTURE_KEYS = ("takenAt", "camera", "exposure", "gps")
# The maker each header-built RAW names (raw_fixtures.raw_header).
MAKES = {name: spec[0] for name, spec in TIFF_RAWS.items()} | {"raf": "FUJIFILM",
                                                               "cr3": "Canon"}


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


@pytest.fixture(scope="module")
def picture(corpus: Path) -> pyvips.Image:
    path = corpus / "images" / "orientation" / "Portrait_0.jpg"
    return pyvips.Image.thumbnail(str(path), 400).crop(0, 0, 266, 400).copy_memory()


def render(engine: LocalEngine, path: Path, *, gps: bool = False) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), SMALL,
                         OutputSpec(ThumbnailFormat.PNG, gps=gps))


def facts(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: metadata[key] for key in CAPTURE_KEYS if key in metadata}


def captured(path: Path) -> dict[str, Any]:
    return raw_capture(path, sniff(path).format).to_metadata(gps=True)


# --- DNG through the engine -----------------------------------------------------------------
@pytest.mark.parametrize("preview", [True, False], ids=["embedded-preview", "demosaic"])
def test_a_dng_gives_taken_at_camera_and_exposure_as_a_jpeg_does(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path, preview: bool) -> None:
    path = make_dng(tmp_path / "a.dng", picture, preview=picture if preview else None)
    metadata = render(engine, path).metadata
    assert metadata["rawSource"] == ("embedded-preview" if preview else "demosaic")
    assert facts(metadata) == SHOT_FACTS


def test_the_fixtures_exif_is_what_libraw_reads_too(picture: pyvips.Image,
                                                    tmp_path: Path) -> None:
    """LibRaw parses the DNG's Exif IFD on its own: the fixture is a camera's EXIF."""
    with rawpy.imread(str(make_dng(tmp_path / "a.dng", picture))) as raw:
        other, lens = raw.other, raw.lens
    assert (other.iso_speed, round(other.aperture, 2), round(other.shutter_speed, 4),
            other.focal_length) == (400, 1.8, 0.004, 35)
    assert other.timestamp.isoformat() == "2024-05-17T18:42:07"
    assert lens.model == SHOT.lens


def test_exif_tags_in_ifd0_as_tiff_ep_allows_give_the_same_facts(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path) -> None:
    path = make_dng(tmp_path / "a.dng", picture, exif_in_ifd0=True)
    assert facts(render(engine, path).metadata) == SHOT_FACTS


def test_a_raws_position_is_stored_only_with_metadata_gps_keep(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path) -> None:
    path = make_dng(tmp_path / "a.dng", picture, preview=picture, shot=PARIS)
    assert "gps" not in render(engine, path).metadata
    kept = render(engine, path, gps=True)
    assert kept.metadata["gps"] == PARIS_GPS
    for thumbnail in kept.thumbnails:  # the thumbnails never carry it
        assert not pyvips.Image.new_from_buffer(thumbnail.data, "").get_typeof("exif-data")


def test_a_dng_without_exif_has_only_its_camera(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path) -> None:
    metadata = render(engine, make_dng(tmp_path / "a.dng", picture, shot=None)).metadata
    assert facts(metadata) == {"camera": {"make": "Media Worker", "model": "Test Camera"}}


def test_an_offsetless_raw_time_is_wall_clock_time(engine: LocalEngine, picture: pyvips.Image,
                                                   tmp_path: Path) -> None:
    path = make_dng(tmp_path / "a.dng", picture, shot=Shot(offset=None, subsec=None))
    assert render(engine, path).metadata["takenAt"] == "2024-05-17T18:42:07"


# --- every other RAW format, by its header --------------------------------------------------
@pytest.mark.parametrize("name", [*TIFF_RAWS, "raf", "cr3"])
def test_every_raw_format_gives_its_exif_facts(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"shot.{name}"
    path.write_bytes(raw_header(name, PARIS))
    assert sniff(path).format == name.split("-", maxsplit=1)[0]
    camera = {**SHOT_FACTS["camera"], "make": MAKES[name]}
    assert captured(path) == {**SHOT_FACTS, "camera": camera, "gps": PARIS_GPS}


def test_a_raf_without_exif_in_its_jpeg_has_no_facts(tmp_path: Path) -> None:
    data = raw_header("raf")
    jpeg = data[int.from_bytes(data[84:88], "big"):]
    assert jpeg_exif(jpeg) is not None
    path = tmp_path / "a.raf"
    path.write_bytes(data.replace(b"Exif\x00\x00", b"Exit\x00\x00", 1))  # another APP1
    assert captured(path) == {}


def test_a_cr3_without_canons_metadata_box_has_no_facts(tmp_path: Path) -> None:
    data = raw_header("cr3").replace(bytes.fromhex("85c0b687820f11e08111f4ce462b6a48"),
                                     b"\x00" * 16)
    path = tmp_path / "a.cr3"
    path.write_bytes(data)
    assert captured(path) == {}


# --- the corpus's cut camera files ----------------------------------------------------------
# Their EXIF as Pillow's and exifread's tag dumps show it; all four fail as their README
# expects (no pixel data, or a format stock LibRaw cannot decode), so no row gets these: the
# reader is checked on them directly.
CORPUS_FACTS = {
    "images/malformed/file-type-fixture.cr3": {
        "takenAt": "2019-12-05T13:32:49.540+08:00",
        "camera": {"make": "Canon", "model": "Canon EOS R", "lens": "EF24-105mm f/4L IS USM"},
        "exposure": {"iso": 100, "fNumber": 4.0, "exposureTime": 0.008,
                     "exposureTimeText": "1/125", "focalLength": 105.0}},
    "images/malformed/file-type-fixture-sony-zv-e10.arw": {
        "takenAt": "2021-07-24T14:23:06.583-07:00",
        "camera": {"make": "SONY", "model": "ZV-E10", "lens": "E PZ 16-50mm F3.5-5.6 OSS"},
        "exposure": {"iso": 100, "fNumber": 18.0, "exposureTime": 0.00625,
                     "exposureTimeText": "1/160", "focalLength": 29.0}},
    "images/malformed/IMG_1361.dng": {
        "takenAt": "2020-12-29T14:24:45.700-05:00",
        "camera": {"make": "Apple", "model": "iPhone 12 Pro",
                   "lens": "iPhone 12 Pro back triple camera 4.2mm f/1.6"},
        "exposure": {"iso": 32, "fNumber": 1.6, "exposureTime": 0.000179986,
                     "exposureTimeText": "1/5556", "focalLength": 4.2},
        "gps": {"lat": 34.059608, "lon": -84.681725, "alt": 261.0}},
    "images/raw/GOPR0024.GPR": {
        "takenAt": "2016-01-01T23:07:27",
        "camera": {"make": "GoPro", "model": "HERO6 Black"},
        "exposure": {"iso": 100, "fNumber": 2.8, "exposureTime": 0.0021978,
                     "exposureTimeText": "1/455", "focalLength": 3.0},
        "gps": {"lat": 33.126891, "lon": -117.326646, "alt": -14.3}},
}


@pytest.mark.parametrize("relative", list(CORPUS_FACTS))
def test_the_corpus_raws_exif_is_read_though_their_pixels_are_gone(
        corpus: Path, relative: str) -> None:
    assert captured(corpus / relative) == CORPUS_FACTS[relative]


# --- broken EXIF costs facts, never the job -------------------------------------------------
def _exif_directory(data: bytearray) -> tuple[int, int]:
    """Where IFD0's Exif IFD pointer is, and where it points."""
    first = int.from_bytes(data[4:8], "little")
    for index in range(int.from_bytes(data[first:first + 2], "little")):
        at = first + 2 + 12 * index
        if int.from_bytes(data[at:at + 2], "little") == EXIF_IFD:
            return at + 8, int.from_bytes(data[at + 8:at + 12], "little")
    raise AssertionError("no Exif IFD")


def _pointer_into_the_pixels(data: bytearray) -> None:
    pointer, _ = _exif_directory(data)
    data[pointer:pointer + 4] = (len(data) // 3).to_bytes(4, "little")


def _values_past_the_end(data: bytearray) -> None:
    _, directory = _exif_directory(data)
    for index in range(int.from_bytes(data[directory:directory + 2], "little")):
        entry = directory + 2 + 12 * index
        if int.from_bytes(data[entry + 2:entry + 4], "little") in (2, 5):  # ASCII, RATIONAL
            data[entry + 8:entry + 12] = (0xFFFFFFF0).to_bytes(4, "little")


def _unknown_field_types(data: bytearray) -> None:
    _, directory = _exif_directory(data)
    for index in range(int.from_bytes(data[directory:directory + 2], "little")):
        entry = directory + 2 + 12 * index
        data[entry + 2:entry + 4] = (99).to_bytes(2, "little")


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt directories it skips
@pytest.mark.parametrize("damage", [_pointer_into_the_pixels, _values_past_the_end,
                                    _unknown_field_types])
def test_broken_exif_leaves_the_facts_out_not_the_thumbnail(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path, damage: Any) -> None:
    path = make_dng(tmp_path / "a.dng", picture, preview=picture)
    data = bytearray(path.read_bytes())
    damage(data)
    path.write_bytes(bytes(data))
    result = render(engine, path)
    assert result.metadata["rawSource"] == "embedded-preview"
    assert len(result.thumbnails) == 1
    assert facts(result.metadata) == {"camera": {"make": "Media Worker",
                                                 "model": "Test Camera"}}


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt directories it skips
@pytest.mark.parametrize("name", [*TIFF_RAWS, "raf", "cr3"])
def test_cut_and_mutated_raw_headers_never_raise(tmp_path: Path, name: str) -> None:
    data = raw_header(name, PARIS)
    rng = random.Random(name)
    path = tmp_path / f"shot.{name}"
    fmt = name.split("-", maxsplit=1)[0]
    for length in range(0, len(data), max(1, len(data) // 40)):
        path.write_bytes(data[:length])
        assert isinstance(raw_capture(path, fmt), Capture)
    for _ in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path.write_bytes(bytes(mutated))
        assert isinstance(raw_capture(path, fmt), Capture)


def test_a_missing_file_is_no_facts(tmp_path: Path) -> None:
    assert raw_capture(tmp_path / "gone.dng", "dng") == Capture()


def test_the_raw_path_reads_the_exif_where_the_orientation_turns_the_picture(
        engine: LocalEngine, picture: pyvips.Image, tmp_path: Path) -> None:
    """The facts do not depend on the path's orientation work."""
    path = make_dng(tmp_path / "a.dng", stored(picture, 6), orientation=6,
                    preview=stored(picture, 6))
    metadata = render(engine, path).metadata
    assert (metadata["width"], metadata["height"]) == (266, 400)
    assert facts(metadata) == SHOT_FACTS
