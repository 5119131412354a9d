"""A photo's capture facts from its EXIF (engines/exif_facts.py): on corpus photos whose EXIF
was read independently (Pillow's tag dump, see MANIFEST.tsv), on EXIF written here with
Pillow, and on broken EXIF, which must only ever cost facts."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
import pyvips
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base
from PIL.TiffImagePlugin import IFDRational

from media_worker.engines.exif_facts import (
    capture_of_exif_bytes,
    capture_of_pillow,
    capture_of_vips,
    shutter_text,
)
from media_worker.engines.probe import register_pillow_plugins


def facts_of(path: Path) -> dict[str, Any]:
    """What libvips' header gives (the path JPEG, WebP and AVIF take), GPS included."""
    header = pyvips.Image.new_from_file(str(path), access="sequential")
    return capture_of_vips(header).to_metadata(gps=True)


def pillow_facts_of(path: Path) -> dict[str, Any]:
    """What Pillow's getexif gives (the path HEIC takes), GPS included."""
    register_pillow_plugins()
    with Image.open(path) as image:
        return capture_of_pillow(image).to_metadata(gps=True)


def jpeg_with(exif: Image.Exif) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def written_facts(exif: Image.Exif) -> dict[str, Any]:
    header = pyvips.Image.new_from_buffer(jpeg_with(exif), "")
    return capture_of_vips(header).to_metadata(gps=True)


def gps_exif(lat_ref: str, lat: tuple[float, ...], lon_ref: str, lon: tuple[float, ...],
             **extra: Any) -> Image.Exif:
    exif = Image.Exif()
    gps = exif.get_ifd(IFD.GPSInfo)
    gps |= {GPS.GPSLatitudeRef: lat_ref, GPS.GPSLatitude: lat,
            GPS.GPSLongitudeRef: lon_ref, GPS.GPSLongitude: lon}
    gps |= {getattr(GPS, name): value for name, value in extra.items()}
    return exif


@pytest.fixture(scope="module")
def camera(corpus: Path) -> Path:
    return corpus / "images" / "camera"


# --- takenAt --------------------------------------------------------------------------------
def test_taken_at_carries_the_offset_time_original(camera: Path) -> None:
    assert facts_of(camera / "HMD_Nokia_8.3_5G.jpg")["takenAt"] == "2022-08-14T14:12:31+03:00"


def test_taken_at_without_an_offset_is_wall_clock_time_without_a_suffix(camera: Path) -> None:
    assert facts_of(camera / "Canon_40D.jpg")["takenAt"] == "2008-05-30T15:56:01"


def test_taken_at_keeps_sub_seconds_to_the_millisecond(camera: Path) -> None:
    """SubSecTimeOriginal "023460" is .023460 s."""
    assert facts_of(camera / "empty_gps.jpg")["takenAt"] == "2025-06-01T16:59:26.023"


def test_heic_exif_item_gives_taken_at_with_offset(camera: Path) -> None:
    facts = pillow_facts_of(camera / "samsung-one-ui-6.heic")
    assert facts["takenAt"] == "2024-01-12T21:38:53.853-08:00"
    assert facts["camera"] == {"make": "samsung", "model": "SM-S906U"}


def test_avif_exif_item_is_read_from_the_libvips_header(corpus: Path) -> None:
    facts = facts_of(corpus / "images/hdr/seine_sdr_gainmap_srgb.avif")
    assert facts["takenAt"] == "2023-08-05T17:16:53"
    assert facts["camera"]["model"] == "Pixel 4a"


def test_offset_written_by_pillow_is_kept() -> None:
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif).update({Base.DateTimeOriginal: "2023:04:01 10:20:30",
                                   Base.OffsetTimeOriginal: "+02:00",
                                   Base.SubsecTimeOriginal: "5"})
    assert written_facts(exif)["takenAt"] == "2023-04-01T10:20:30.500+02:00"


def test_digitized_time_stands_in_for_a_missing_original_time() -> None:
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif).update({Base.DateTimeDigitized: "2019:12:31 23:59:59",
                                   Base.OffsetTimeDigitized: "-03:30"})
    assert written_facts(exif)["takenAt"] == "2019-12-31T23:59:59-03:30"


@pytest.mark.parametrize("date", ["0000:00:00 00:00:00", "2023:13:01 10:00:00", "yesterday"])
def test_impossible_dates_are_absent(date: str) -> None:
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = date
    assert "takenAt" not in written_facts(exif)


def test_a_malformed_offset_is_left_out_not_the_time() -> None:
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif).update({Base.DateTimeOriginal: "2023:04:01 10:20:30",
                                   Base.OffsetTimeOriginal: "+99:00"})
    assert written_facts(exif)["takenAt"] == "2023-04-01T10:20:30"


# --- camera and exposure --------------------------------------------------------------------
def test_camera_names_make_model_and_lens(camera: Path) -> None:
    assert facts_of(camera / "iphone_hdr_YES.jpg")["camera"] == {
        "make": "Apple", "model": "iPhone 6", "lens": "iPhone 6 back camera 4.15mm f/2.2"}


def test_camera_names_lose_the_padding_cameras_write(camera: Path) -> None:
    """Olympus pads with spaces, the Canon R5 file ends its strings with NUL (which
    PostgreSQL's jsonb refuses)."""
    assert facts_of(camera / "42_IndexError.jpg")["camera"] == {
        "make": "OLYMPUS IMAGING CORP.", "model": "E-P3"}
    assert facts_of(camera / "prairie_falcon.jpg")["camera"] == {
        "make": "Canon", "model": "Canon EOS R5"}


def test_exposure_has_iso_aperture_time_and_focal_length(camera: Path) -> None:
    assert facts_of(camera / "Canon_40D.jpg")["exposure"] == {
        "iso": 100, "fNumber": 7.1, "exposureTime": 0.00625, "exposureTimeText": "1/160",
        "focalLength": 135.0}


@pytest.mark.parametrize(("seconds", "text"), [
    (1 / 125, "1/125"), (1 / 30, "1/30"), (0.4, "1/2.5"), (0.5, "1/2"), (1.0, "1"),
    (2.5, "2.5"), (30.0, "30"),
])
def test_exposure_time_text_reads_as_a_shutter_speed(seconds: float, text: str) -> None:
    assert shutter_text(seconds) == text


def test_a_photo_without_exif_has_no_capture_keys(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    assert facts_of(path) == {}


# --- GPS ------------------------------------------------------------------------------------
def test_gps_is_signed_decimal_degrees_with_altitude(camera: Path) -> None:
    """40° 26' 49.1" N, 3° 43' 29.11" W, 639.6 m."""
    assert facts_of(camera / "iphone_hdr_YES.jpg")["gps"] == {
        "lat": 40.446972, "lon": -3.724753, "alt": 639.6}


def test_gps_without_altitude_has_no_alt(camera: Path) -> None:
    assert facts_of(camera / "DSCN0010.jpg")["gps"] == {"lat": 43.467448, "lon": 11.885127}


def test_gps_in_degrees_and_decimal_minutes(corpus: Path) -> None:
    """This Pixel 4a AVIF writes 48° 49.325' N, 2° 23.9083' E (seconds 0)."""
    assert facts_of(corpus / "images/hdr/seine_sdr_gainmap_srgb.avif")["gps"] == {
        "lat": 48.822083, "lon": 2.398472, "alt": 83.2}


def test_southern_and_below_sea_level_are_negative() -> None:
    exif = gps_exif("S", (IFDRational(33), IFDRational(52), IFDRational(0)), "E",
                    (151.0, 12.0, 30.0), GPSAltitudeRef=b"\x01",
                    GPSAltitude=IFDRational(415, 10))
    assert written_facts(exif)["gps"] == {"lat": -33.866667, "lon": 151.208333, "alt": -41.5}


def test_nan_coordinates_are_no_position(camera: Path) -> None:
    """The moto g(9) writes GPS tags of 0/0 rationals when it had no fix."""
    assert "gps" not in facts_of(camera / "empty_gps.jpg")


def test_zero_zero_is_no_position() -> None:
    assert "gps" not in written_facts(gps_exif("N", (0.0, 0.0, 0.0), "E", (0.0, 0.0, 0.0)))


def test_a_reference_without_coordinates_is_no_position(corpus: Path) -> None:
    """This Pixel photo keeps GPSLatitudeRef and GPSAltitude but no coordinates."""
    assert "gps" not in facts_of(corpus / "images/hdr/Ultra_HDR_Samples_Originals_05.jpg")


def test_gps_is_left_out_unless_asked(camera: Path) -> None:
    header = pyvips.Image.new_from_file(str(camera / "DSCN0010.jpg"), access="sequential")
    assert "gps" not in capture_of_vips(header).to_metadata(gps=False)


# --- hostile EXIF ---------------------------------------------------------------------------
def test_exif_that_trips_other_parsers_still_gives_its_facts(camera: Path) -> None:
    """42_IndexError.jpg is named for the IndexError it made exif-py raise (its issue 42)."""
    facts = facts_of(camera / "42_IndexError.jpg")
    assert facts["takenAt"] == "2014-08-23T13:05:43"
    assert facts["exposure"]["iso"] == 1600


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt blocks it skips
@pytest.mark.parametrize("blob", [b"", b"Exif\x00\x00", b"Exif\x00\x00MM\x00*\xff\xff\xff\xff",
                                  b"II*\x00\x08\x00\x00\x00\xff\xff", b"\x00" * 64])
def test_garbage_exif_gives_no_facts(blob: bytes) -> None:
    assert capture_of_exif_bytes(blob).to_metadata(gps=True) == {}


@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt blocks it skips
def test_mutated_exif_never_raises(camera: Path) -> None:
    """Bytes of a real EXIF block overwritten at random (seeded): facts may go, never an
    exception."""
    header = pyvips.Image.new_from_file(str(camera / "iphone_hdr_YES.jpg"))
    blob = header.get("exif-data")
    rng = random.Random(16)
    for _ in range(200):
        mutated = bytearray(blob)
        for _ in range(rng.randint(1, 40)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        capture_of_exif_bytes(bytes(mutated)).to_metadata(gps=True)
    capture_of_exif_bytes(blob[: len(blob) // 3]).to_metadata(gps=True)  # truncated
