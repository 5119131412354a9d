"""What a job renders beyond its sizes, and which sizes: profiles, the focus point, video
preview clips and storyboards. Parsed from settings and messages here, so the engine and the
processor receive values, never strings."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from media_worker.errors import PermanentError
from media_worker.types import ThumbnailSize

OFF = "off"
PREVIEW_GRAMMAR = "off or WIDTHxHEIGHT:SECONDS[:FPS][:webp|mp4]"
STORYBOARD_GRAMMAR = "off or TILEWIDTHxTILEHEIGHT:INTERVAL (seconds, or auto)"
PREVIEW_FORMATS = ("webp", "mp4")
DEFAULT_PREVIEW_FPS = 12
MAX_PREVIEW_SECONDS = 60
MAX_PREVIEW_FPS = 60
# `auto`: about this many tiles over the whole video, never closer than a second apart.
AUTO_TILES = 100
MIN_AUTO_INTERVAL = 1.0
# PLACEHOLDERS: which placeholders the row's metadata gets (engines/placeholders/).
PLACEHOLDER_KINDS = ("blurhash", "thumbhash", "colors")
DEFAULT_PLACEHOLDERS = "blurhash,thumbhash,colors"
_BOX = re.compile(r"^(\d+)x(\d+)$", re.I)


@dataclass(frozen=True)
class Focus:
    """Where `cover` crops centre: fractions (0..1) of the upright picture's width and height."""

    x: float
    y: float


@dataclass(frozen=True)
class PreviewSpec:
    """A silent, looping clip from the representative frame, fit inside width x height."""

    width: int
    height: int
    seconds: float
    fps: int = DEFAULT_PREVIEW_FPS
    format: str = "webp"


@dataclass(frozen=True)
class StoryboardSpec:
    """Tiles of tile_width x tile_height every `interval` seconds (None: auto)."""

    tile_width: int
    tile_height: int
    interval: float | None = None

    def interval_for(self, duration: float) -> float:
        """The interval between tiles for a video of `duration` seconds."""
        if self.interval is not None:
            return self.interval
        return max(MIN_AUTO_INTERVAL, duration / AUTO_TILES)

    def tile_times(self, duration: float) -> list[float]:
        """When each tile is taken; a video shorter than one interval gives one tile."""
        step = self.interval_for(duration)
        count = max(1, math.ceil(duration / step)) if duration > 0 else 1
        return [round(index * step, 3) for index in range(count)]


def parse_profiles(text: str) -> dict[str, list[ThumbnailSize]]:
    """THUMBNAIL_PROFILES: a JSON object from profile name to a sizes string."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError('must be a JSON object of name to sizes, e.g. {"avatar": "a:64x64:cover"}')
    profiles = {}
    for name, sizes in raw.items():
        try:
            profiles[str(name)] = ThumbnailSize.parse_list(sizes)
        except ValueError as exc:
            raise ValueError(f"profile {name!r}: {exc}") from None
    return profiles


# A motion photo's clip where VIDEO_PREVIEW is off (`480x480:3:12:webp`): a phone's motion
# lasts a few seconds, so three of them show most of it, at the medium size's box.
MOTION_PHOTO_CLIP = PreviewSpec(480, 480, 3.0, DEFAULT_PREVIEW_FPS, "webp")


def parse_preview(text: str) -> PreviewSpec | None:
    """VIDEO_PREVIEW: `off` or `WxH:SECONDS[:FPS][:FORMAT]`, e.g. `480x480:3:12:webp`."""
    if text.strip().lower() == OFF:
        return None
    parts = [part.strip().lower() for part in text.split(":")]
    box = _BOX.match(parts[0])
    if not box or len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"{text!r} is not {PREVIEW_GRAMMAR}")
    seconds = _number(parts[1], text, PREVIEW_GRAMMAR)
    fps, fmt = DEFAULT_PREVIEW_FPS, "webp"
    for part in parts[2:]:
        if part in PREVIEW_FORMATS:
            fmt = part
        elif part.isdigit() and 1 <= int(part) <= MAX_PREVIEW_FPS:
            fps = int(part)
        else:
            raise ValueError(f"{text!r}: {part!r} is neither a frame rate (1-{MAX_PREVIEW_FPS}) "
                             f"nor a format ({', '.join(PREVIEW_FORMATS)})")
    if not 0 < seconds <= MAX_PREVIEW_SECONDS:
        raise ValueError(f"{text!r}: seconds must be above 0 and at most {MAX_PREVIEW_SECONDS}")
    return PreviewSpec(int(box.group(1)), int(box.group(2)), seconds, fps, fmt)


def parse_storyboard(text: str) -> StoryboardSpec | None:
    """VIDEO_STORYBOARD: `off` or `TILEWxTILEH:INTERVAL`, e.g. `160x90:auto` or `160x90:10`."""
    if text.strip().lower() == OFF:
        return None
    parts = [part.strip().lower() for part in text.split(":")]
    box = _BOX.match(parts[0])
    if not box or len(parts) != 2:
        raise ValueError(f"{text!r} is not {STORYBOARD_GRAMMAR}")
    interval = None if parts[1] == "auto" else _number(parts[1], text, STORYBOARD_GRAMMAR)
    if interval is not None and interval <= 0:
        raise ValueError(f"{text!r}: the interval must be above 0 seconds")
    return StoryboardSpec(int(box.group(1)), int(box.group(2)), interval)


def parse_placeholders(value: str) -> frozenset[str]:
    """PLACEHOLDERS (comma-separated kinds, any order; empty for none) as a set; an unknown
    name raises ValueError naming the known ones."""
    names = frozenset(name.strip().lower() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(PLACEHOLDER_KINDS))
    if unknown:
        raise ValueError(f"unknown placeholder {', '.join(unknown)}; choose from "
                         f"{', '.join(PLACEHOLDER_KINDS)}")
    return names


def parse_focus(raw: Any) -> Focus | None:
    """A message's `focus`, or a permanent failure naming it (the job cannot be framed)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"x", "y"} or len(raw) != len(("x", "y")):
        raise PermanentError(f'invalid focus {raw!r}: expected {{"x": 0..1, "y": 0..1}}')
    values = []
    for axis in ("x", "y"):
        value = raw[axis]
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 <= value <= 1):
            raise PermanentError(f"invalid focus: {axis} must be a number from 0 to 1, "
                                 f"not {value!r}")
        values.append(float(value))
    return Focus(*values)


def rendition_request(profile: str | None, focus: Any,
                      row_metadata: dict[str, Any] | None) -> tuple[str | None, Any]:
    """The job's profile and focus: the message's, else those the row's `metadata` records.
    A job re-sent without them (the reconciliation sweep, `retry-failed`, `backfill` send
    only the row's id) then renders what was asked for: the worker records both in the row
    when it finishes, and an API may store them there when it inserts the row."""
    recorded = row_metadata or {}
    return (profile if profile is not None else recorded.get("profile"),
            focus if focus is not None else recorded.get("focus"))


def recorded_request(profile: str | None, focus: Focus | None) -> dict[str, Any]:
    """What the row's metadata keeps of the request, for the next time the job is sent."""
    kept: dict[str, Any] = {"profile": profile} if profile is not None else {}
    if focus is not None:
        kept["focus"] = {"x": focus.x, "y": focus.y}
    return kept


def sizes_for(profile: str | None, profiles: dict[str, list[ThumbnailSize]],
              default: list[ThumbnailSize]) -> list[ThumbnailSize]:
    """The sizes of a job: its profile's, else the default; an unknown profile fails it."""
    if profile is None:
        return default
    if profile not in profiles:
        raise PermanentError(f"unknown thumbnail profile {profile!r}")
    return profiles[profile]


def _number(text: str, whole: str, grammar: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{whole!r} is not {grammar}") from None
