"""A video's facts beyond its picture stream, from the container PyAV has open: the bitrate,
the first audio track (or none), and its capture facts (`capture.py`) from the tags phones
write.

Where the capture facts come from, in order of preference:
- `takenAt`: QuickTime's `com.apple.quicktime.creationdate` (local time with its offset,
  `2023-04-01T10:20:30+0200`), else `creation_time` (MP4 `mvhd`, Matroska `DateUTC`: an
  instant in UTC, written with `Z`), first the container's, then the video stream's;
- `camera`: `com.apple.quicktime.make`/`model`/`camera.lens_model`, else Android's
  `com.android.manufacturer`/`model`;
- `gps`: `com.apple.quicktime.location.ISO6709`, else `location` (FFmpeg's name for the
  `©xyz` atom Android and older iPhones write), both ISO 6709 strings.
FFmpeg gives tags in the case the file uses (Matroska's are upper case), so names are
compared in lower case. Nothing here raises on bad tags: an unreadable fact is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from media_worker.engines.capture import (
    Camera,
    Capture,
    Position,
    clean_text,
    iso_timestamp,
    position,
)

_QUICKTIME = "com.apple.quicktime."
_ANDROID = "com.android."
_LOCATION_TAGS = (_QUICKTIME + "location.iso6709", "location")
# ISO 6709: latitude, longitude and optional altitude, each signed; degrees (DD / DDD),
# degrees and minutes (DDMM) or degrees, minutes and seconds (DDMMSS), with decimals.
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?")
_LATITUDE_DEGREE_DIGITS = 2
_LONGITUDE_DEGREE_DIGITS = 3


@dataclass(frozen=True)
class AudioTrack:
    """`audio` in the row: the first audio stream's codec, channels and sample rate (Hz)."""

    codec: str | None
    channels: int | None
    sample_rate: int | None

    def to_metadata(self) -> dict[str, Any]:
        return {"codec": self.codec, "channels": self.channels, "sampleRate": self.sample_rate}


@dataclass(frozen=True)
class VideoDetails:
    """What `video_metadata` adds to the stream's own facts."""

    bitrate: int | None = None  # bits per second, the whole file (every stream)
    audio: AudioTrack | None = None
    capture: Capture = field(default_factory=Capture)

    def to_metadata(self, *, gps: bool) -> dict[str, Any]:
        facts: dict[str, Any] = {"audio": self.audio.to_metadata() if self.audio else None}
        if self.bitrate:
            facts["bitrate"] = self.bitrate
        return facts | self.capture.to_metadata(gps=gps)


def video_details(container: Any, stream: Any) -> VideoDetails:
    """The details of `container` whose picture is `stream`."""
    tags = _lower_keys(getattr(stream, "metadata", {})) | _lower_keys(container.metadata)
    return VideoDetails(bitrate=_bitrate(container, stream), audio=_audio(container),
                        capture=Capture(taken_at=taken_at(tags), camera=_camera(tags),
                                        position=_location(tags)))


def taken_at(tags: dict[str, str]) -> str | None:
    local = _parse_time(tags.get(_QUICKTIME + "creationdate"))
    if local is not None and local.tzinfo is not None:
        return iso_timestamp(local)
    instant = _parse_time(tags.get("creation_time"))
    return iso_timestamp(instant, utc_instant=True) if instant is not None else None


def iso6709_position(text: str | None) -> Position | None:
    """`+51.5334-000.1255+026.756/` as a position; None when it is not ISO 6709."""
    match = _ISO6709.match(clean_text(text) or "")
    if match is None:
        return None
    lat = _angle(match.group(1), _LATITUDE_DEGREE_DIGITS)
    lon = _angle(match.group(2), _LONGITUDE_DEGREE_DIGITS)
    alt = float(match.group(3)) if match.group(3) else None
    return position(lat, lon, alt)


# --- the facts ------------------------------------------------------------------------------
def _bitrate(container: Any, stream: Any) -> int | None:
    """FFmpeg's estimate for the whole file, else the video stream's own declared rate."""
    for rate in (container.bit_rate, stream.bit_rate):
        if isinstance(rate, int) and rate > 0:
            return rate
    return None


def _audio(container: Any) -> AudioTrack | None:
    if not container.streams.audio:
        return None
    audio = container.streams.audio[0]
    context = audio.codec_context  # None where this FFmpeg has no decoder for it
    if context is None:
        return AudioTrack(None, None, None)
    codec = context.codec.canonical_name or context.codec.name
    channels = context.layout.nb_channels if context.layout is not None else None
    return AudioTrack(codec, channels or None, context.sample_rate or None)


def _camera(tags: dict[str, str]) -> Camera:
    make = tags.get(_QUICKTIME + "make") or tags.get(_ANDROID + "manufacturer")
    model = tags.get(_QUICKTIME + "model") or tags.get(_ANDROID + "model")
    return Camera(make=clean_text(make), model=clean_text(model),
                  lens=clean_text(tags.get(_QUICKTIME + "camera.lens_model")))


def _location(tags: dict[str, str]) -> Position | None:
    for name in _LOCATION_TAGS:
        found = iso6709_position(tags.get(name))
        if found is not None:
            return found
    return None


# --- value parsing --------------------------------------------------------------------------
def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(clean_text(text) or "")
    except ValueError:
        return None


def _angle(text: str, degree_digits: int) -> float | None:
    """A signed ISO 6709 angle; how many digits precede the decimal point says whether it
    is degrees, degrees and minutes, or degrees, minutes and seconds."""
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, fraction = text[1:].partition(".")
    extra = len(whole) - degree_digits
    if extra not in (0, 2, 4):
        return None
    value = float(f"{whole}.{fraction or 0}")
    if extra == 0:
        return sign * value
    degrees, rest = divmod(value, 10**extra)
    minutes, seconds = divmod(rest, 100) if extra == 4 else (rest, 0.0)
    if minutes >= 60 or seconds >= 60:
        return None
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _lower_keys(tags: object) -> dict[str, str]:
    if not isinstance(tags, dict):
        return {}
    return {str(key).lower(): value for key, value in tags.items() if isinstance(value, str)}
