"""When, with what and where an original was captured, in the shape the row's metadata gives
the API: `takenAt`, `camera`, `exposure` and (only under METADATA_GPS=keep) `gps`.

Photos (EXIF, `exif_facts.py`) and videos (container tags, `video_details.py`) fill the same
types, so the API reads one shape for both. Every value comes from untrusted bytes: a fact
that does not parse, is out of range or is a known placeholder (0/0 positions, zeroed dates)
is left out rather than stored wrong, and nothing here raises on bad input.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

MAX_TEXT = 128  # a camera name longer than this is not a camera name
# What a zeroed date field decodes to: the MP4 epoch and the Unix epoch.
EPOCH_DATES = frozenset({"1904-01-01", "1970-01-01"})
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
MAX_OFFSET = timedelta(hours=14)  # UTC+14 (Kiribati) is the furthest zone on Earth


@dataclass(frozen=True)
class Camera:
    """`camera` in the row: each key only where the file names it."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None

    def to_metadata(self) -> dict[str, str]:
        return _present({"make": self.make, "model": self.model, "lens": self.lens})


@dataclass(frozen=True)
class Exposure:
    """`exposure` in the row. `exposure_time` is in seconds, `exposure_time_text` the way a
    camera shows it ("1/125", "2.5"), so the API need not round a float to a shutter speed."""

    iso: int | None = None
    f_number: float | None = None
    exposure_time: float | None = None
    exposure_time_text: str | None = None
    focal_length: float | None = None  # millimetres, as the lens (not 35 mm equivalent)

    def to_metadata(self) -> dict[str, Any]:
        return _present({"iso": self.iso, "fNumber": self.f_number,
                         "exposureTime": self.exposure_time,
                         "exposureTimeText": self.exposure_time_text,
                         "focalLength": self.focal_length})


@dataclass(frozen=True)
class Position:
    """Signed decimal degrees (north and east positive, WGS 84); metres above sea level."""

    lat: float
    lon: float
    alt: float | None = None

    def to_metadata(self) -> dict[str, float]:
        return _present({"lat": self.lat, "lon": self.lon, "alt": self.alt})


@dataclass(frozen=True)
class Capture:
    """Everything this module describes; empty when the file says nothing (or nothing sane)."""

    taken_at: str | None = None
    camera: Camera = Camera()
    exposure: Exposure = Exposure()
    position: Position | None = None

    def to_metadata(self, *, gps: bool) -> dict[str, Any]:
        """The row's keys; `gps` only when asked (METADATA_GPS=keep), never by default."""
        facts: dict[str, Any] = {"takenAt": self.taken_at,
                                 "camera": self.camera.to_metadata() or None,
                                 "exposure": self.exposure.to_metadata() or None}
        if gps and self.position is not None:
            facts["gps"] = self.position.to_metadata()
        return _present(facts)


def clean_text(value: object) -> str | None:
    """A tag's text without the padding cameras add (NULs, spaces) and without control
    characters (PostgreSQL's jsonb refuses NUL); None when nothing printable is left."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if unicodedata.category(c) != "Cc").strip()
    return text[:MAX_TEXT] or None


def parse_offset(value: object) -> timezone | None:
    """A UTC offset written `+03:00` (EXIF OffsetTime*) or `+0300`; None when malformed."""
    match = _OFFSET.match(clean_text(value) or "")
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > MAX_OFFSET or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def iso_timestamp(moment: datetime, *, utc_instant: bool = False) -> str | None:
    """ISO 8601, milliseconds only where the file has them. With an offset as the file says
    it (`+02:00`); `Z` for an instant known in UTC only (`utc_instant`); no suffix for a
    wall-clock time whose zone the file does not say. None for zeroed dates."""
    if moment.date().isoformat() in EPOCH_DATES:
        return None
    if utc_instant and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    spec = "milliseconds" if moment.microsecond else "seconds"
    text = moment.isoformat(timespec=spec)
    return text + "Z" if utc_instant else text


def position(lat: float | None, lon: float | None, alt: float | None = None) -> Position | None:
    """A position worth storing: finite, on the globe, and not 0/0 (what phones write when
    they have no fix, and what privacy tools leave behind)."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None
    altitude = round(alt, 1) if alt is not None and math.isfinite(alt) else None
    return Position(round(lat, 6), round(lon, 6), altitude)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
