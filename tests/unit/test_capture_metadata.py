"""Capture facts end to end through the in-process engine and the settings: METADATA_GPS
decides whether the row's metadata keeps the position, thumbnails never carry it, and broken
EXIF never costs a thumbnail."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import pyvips
from PIL import Image

from media_worker.app.worker import processor_settings
from media_worker.config import SettingsError, ThumbnailFormat, load_settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.types import ThumbnailSize

SMALL = ThumbnailSize.parse_list("small:150x150")
DROP = OutputSpec()  # METADATA_GPS=drop, the default
KEEP = OutputSpec(gps=True)


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, output: OutputSpec = DROP) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), SMALL, output)


# --- the setting ----------------------------------------------------------------------------
@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the caller's METADATA_GPS nor a .env leaks into the settings tests."""
    monkeypatch.delenv("METADATA_GPS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_environment")
def test_metadata_gps_is_drop_by_default() -> None:
    settings = load_settings()
    assert settings.metadata_gps == "drop"
    assert processor_settings(settings).output.gps is False


@pytest.mark.usefixtures("no_environment")
def test_metadata_gps_keep_reaches_the_decoders_output_spec() -> None:
    assert processor_settings(load_settings(metadata_gps=" Keep ")).output.gps is True


@pytest.mark.usefixtures("no_environment")
def test_metadata_gps_refuses_other_values() -> None:
    with pytest.raises(SettingsError, match="METADATA_GPS"):
        load_settings(metadata_gps="fuzzy")


# --- photos ---------------------------------------------------------------------------------
def test_photo_position_is_not_stored_by_default(engine: LocalEngine, corpus: Path) -> None:
    metadata = render(engine, corpus / "images/camera/DSCN0010.jpg").metadata
    assert "gps" not in metadata
    assert metadata["takenAt"] == "2008-10-22T16:28:39"
    assert metadata["camera"] == {"make": "NIKON", "model": "COOLPIX P6000"}


def test_photo_position_is_stored_with_keep(engine: LocalEngine, corpus: Path) -> None:
    metadata = render(engine, corpus / "images/camera/DSCN0010.jpg", KEEP).metadata
    assert metadata["gps"] == {"lat": 43.467448, "lon": 11.885127}


def test_heic_decoded_by_pillow_gets_the_same_facts(engine: LocalEngine, corpus: Path) -> None:
    metadata = render(engine, corpus / "images/formats/heic/IMG_5195.HEIC", KEEP).metadata
    assert metadata["takenAt"] == "2021-04-11T15:47:53.054-05:00"
    assert metadata["camera"]["lens"] == "iPhone 11 Pro Max back triple camera 4.25mm f/1.8"
    assert metadata["exposure"]["fNumber"] == 1.8
    assert metadata["gps"] == {"lat": 39.051344, "lon": -94.288772, "alt": 260.6}


@pytest.mark.parametrize("fmt", list(ThumbnailFormat))
def test_thumbnails_carry_no_position_even_with_keep(engine: LocalEngine, corpus: Path,
                                                     fmt: ThumbnailFormat) -> None:
    source = corpus / "images/camera/iphone_hdr_YES.jpg"
    result = render(engine, source, OutputSpec(fmt, gps=True))
    assert "gps" in result.metadata
    for thumbnail in result.thumbnails:
        assert not pyvips.Image.new_from_buffer(thumbnail.data, "").get_typeof("exif-data")
        with Image.open(io.BytesIO(thumbnail.data)) as pillow:
            assert dict(pillow.getexif()) == {}


@pytest.mark.parametrize("name", ["42_IndexError.jpg", "empty_gps.jpg"])
def test_photos_with_broken_exif_still_get_thumbnails(engine: LocalEngine, corpus: Path,
                                                      name: str) -> None:
    result = render(engine, corpus / "images/camera" / name, KEEP)
    assert len(result.thumbnails) == 1
    assert "gps" not in result.metadata  # neither has a usable position
    assert result.metadata["camera"]["make"]


def test_an_image_without_exif_has_no_capture_keys(engine: LocalEngine, tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (300, 200), "navy").save(path)
    metadata = render(engine, path, KEEP).metadata
    assert {"takenAt", "camera", "exposure", "gps"}.isdisjoint(metadata)


# --- videos ---------------------------------------------------------------------------------
def test_video_position_is_not_stored_by_default(engine: LocalEngine, corpus: Path) -> None:
    metadata = render(engine, corpus / "videos/bt601.mov").metadata
    assert "gps" not in metadata
    assert metadata["takenAt"] == "2024-02-12T19:16:55Z"
    assert metadata["audio"] == {"codec": "aac", "channels": 1, "sampleRate": 44100}


def test_video_position_is_stored_with_keep(engine: LocalEngine, corpus: Path) -> None:
    metadata = render(engine, corpus / "videos/bt601.mov", KEEP).metadata
    assert metadata["gps"] == {"lat": 40.6892, "lon": -74.0445, "alt": 10.0}
