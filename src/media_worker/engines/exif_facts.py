"""A photo's capture facts from its EXIF: the time it was taken (with the camera's UTC offset
where EXIF 2.31's OffsetTimeOriginal gives it), camera and lens, exposure, GPS position.

Parsed by Pillow's `Image.Exif`, already a dependency and already parsing this block for the
orientation, from whatever the decoder holds: the `exif-data` blob of the libvips header
(JPEG, PNG, WebP, AVIF) or Pillow's own `getexif()` (HEIC through pillow-heif, BMP, the
second-chance JPEG path). A TIFF's EXIF is not read: libvips gives no blob for it. Camera
RAW files (most of them TIFFs underneath) are read by engines/raw_exif.py into the same shape.

EXIF is the most hostile part of a photo (maker notes, offsets pointing anywhere, NaN
rationals): each group of facts is read on its own and a group that fails is simply absent,
so broken EXIF costs facts, never a thumbnail.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import pyvips
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base

from media_worker.engines.capture import (
    Camera,
    Capture,
    Exposure,
    Position,
    clean_text,
    iso_timestamp,
    parse_offset,
    position,
)

_DATE = re.compile(r"^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_DIGITS = re.compile(r"^\d+")
# (date, offset, sub-second) tags: when the picture was taken, else when it was digitised.
_TIME_TAGS = (
    (Base.DateTimeOriginal, Base.OffsetTimeOriginal, Base.SubsecTimeOriginal),
    (Base.DateTimeDigitized, Base.OffsetTimeDigitized, Base.SubsecTimeDigitized),
)
_SOUTH_WEST = frozenset({"S", "W"})
T = TypeVar("T")


def capture_of_vips(header: pyvips.Image) -> Capture:
    """The facts of the `exif-data` blob libvips read with the header; empty without one."""
    if not header.get_typeof("exif-data"):
        return Capture()
    return capture_of_exif_bytes(header.get("exif-data"))


def capture_of_pillow(image: Image.Image) -> Capture:
    return _guarded(lambda: exif_capture(image.getexif()), Capture())


def capture_of_exif_bytes(blob: bytes) -> Capture:
    """From an EXIF block, with or without its `Exif\\0\\0` prefix (JPEG APP1 has it, the
    HEIF/AVIF item does not)."""
    def parse() -> Capture:
        exif = Image.Exif()
        exif.load(blob)
        return exif_capture(exif)

    return _guarded(parse, Capture())


def exif_capture(exif: Image.Exif) -> Capture:
    details: Mapping[int, Any] = _guarded(lambda: exif.get_ifd(IFD.Exif), {})
    return ifd_capture(exif, details, lambda: exif.get_ifd(IFD.GPSInfo))


def ifd_capture(primary: Mapping[int, Any], details: Mapping[int, Any],
                gps: Callable[[], Mapping[int, Any]]) -> Capture:
    """The facts of EXIF's three directories given apart: IFD0 (`primary`), the Exif IFD
    (`details`) and the GPS IFD (read by `gps`, and only then). A JPEG's block holds all
    three (`exif_capture`); a Canon CR3 stores each as a TIFF of its own (engines/raw_exif.py)."""
    tags = _Tags(details, primary)
    return Capture(
        taken_at=_guarded(lambda: taken_at(tags), None),
        camera=_guarded(lambda: _camera(tags), Camera()),
        exposure=_guarded(lambda: _exposure(tags), Exposure()),
        position=_guarded(lambda: gps_position(gps()), None),
    )


class _Tags:
    """A tag from the Exif IFD, else from IFD0 (where some writers put Exif IFD tags)."""

    def __init__(self, details: Mapping[int, Any], primary: Mapping[int, Any]) -> None:
        self._details = details
        self._primary = primary

    def get(self, tag: int) -> Any:
        value = self._details.get(tag)
        return self._primary.get(tag) if value is None else value


# --- the facts ------------------------------------------------------------------------------
def taken_at(tags: _Tags) -> str | None:
    """DateTimeOriginal (else DateTimeDigitized) with its sub-seconds and, when the file has
    it, its offset: `2022-08-14T14:12:31+03:00`; without one, the camera's wall-clock time
    with no suffix (its zone unknown, not UTC)."""
    for date_tag, offset_tag, subsec_tag in _TIME_TAGS:
        moment = _exif_datetime(tags.get(date_tag))
        if moment is None:
            continue
        moment = moment.replace(microsecond=_subsec_microseconds(tags.get(subsec_tag)),
                                tzinfo=parse_offset(tags.get(offset_tag)))
        return iso_timestamp(moment)
    return None


def _camera(tags: _Tags) -> Camera:
    return Camera(make=clean_text(tags.get(Base.Make)), model=clean_text(tags.get(Base.Model)),
                  lens=clean_text(tags.get(Base.LensModel)))


def _exposure(tags: _Tags) -> Exposure:
    iso = _positive(tags.get(Base.ISOSpeedRatings))  # PhotographicSensitivity since EXIF 2.3
    seconds = _positive(tags.get(Base.ExposureTime))
    f_number = _positive(tags.get(Base.FNumber))
    focal = _positive(tags.get(Base.FocalLength))
    return Exposure(
        iso=int(iso) if iso is not None else None,
        f_number=round(f_number, 2) if f_number is not None else None,
        exposure_time=float(f"{seconds:.6g}") if seconds is not None else None,
        exposure_time_text=shutter_text(seconds) if seconds is not None else None,
        focal_length=round(focal, 2) if focal is not None else None,
    )


def gps_position(gps: Mapping[int, Any]) -> Position | None:
    """Degrees, minutes and seconds with their N/S, E/W references as signed decimal
    degrees; the altitude negative when GPSAltitudeRef says below sea level."""
    lat = _degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef))
    lon = _degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef))
    alt = _number(gps.get(GPS.GPSAltitude))
    if alt is not None and _below_sea_level(gps.get(GPS.GPSAltitudeRef)):
        alt = -alt
    return position(lat, lon, alt)


def shutter_text(seconds: float) -> str:
    """An exposure time as cameras show it: `1/125` below a second, `2.5` from one up."""
    if seconds >= 0.95:
        return f"{round(seconds, 1):g}"
    reciprocal = 1 / seconds
    if reciprocal >= 3:
        return f"1/{round(reciprocal)}"
    return f"1/{round(reciprocal, 1):g}"


# --- value parsing --------------------------------------------------------------------------
def _exif_datetime(value: object) -> datetime | None:
    match = _DATE.match(clean_text(value) or "")
    if match is None:
        return None
    try:  # "0000:00:00 00:00:00" and other impossible dates
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _subsec_microseconds(value: object) -> int:
    """SubSecTime is the decimal fraction's digits ("023460" is .023460 s); kept to the
    millisecond."""
    match = _DIGITS.match(clean_text(value) or "")
    return int(match.group()[:3].ljust(3, "0")) * 1000 if match else 0


def _degrees(value: object, reference: object) -> float | None:
    parts = value if isinstance(value, tuple | list) else (value,)
    numbers = [number for number in map(_number, parts[:3]) if number is not None and number >= 0]
    if not numbers or len(numbers) != len(parts[:3]):
        return None
    degrees = sum(number / 60**index for index, number in enumerate(numbers))
    return -degrees if (clean_text(reference) or "").upper() in _SOUTH_WEST else degrees


def _below_sea_level(reference: object) -> bool:
    if isinstance(reference, bytes):
        return reference[:1] == b"\x01"
    return reference == 1


def _number(value: object) -> float | None:
    """A finite number from an EXIF value (Pillow's IFDRational, an int, the first of a
    tuple); None for NaN (0/0 rationals), text and anything else."""
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    if isinstance(value, bool | str | bytes) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _positive(value: object) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _guarded(read: Callable[[], T], default: T) -> T:
    """`read()`, or `default` when the EXIF makes it raise: fuzzed and damaged blocks make
    Pillow raise almost anything (struct.error, IndexError, UnicodeDecodeError, …)."""
    try:
        return read()
    except Exception:
        return default
