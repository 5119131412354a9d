"""The values that cross the worker's boundaries: queue messages, media rows, thumbnails.

Field names are snake_case in Python and camelCase on the wire, because the producer is a
NestJS/Prisma API and the queue message and JSON columns are read by it too.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base for models serialised as camelCase JSON and parsed leniently (unknown keys ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON-ready dict another service expects."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class MediaStatus(StrEnum):
    """The status machine of a `Media` row (see docs/DESIGN or README)."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


class WorkerQueueMessage(WireModel):
    """A job as the API sends it; only `mediaId` is required, the row is the source of truth."""

    media_id: str = Field(min_length=1, max_length=200)
    job_id: str | None = None
    type: str = "THUMBNAIL"
    bucket: str | None = None
    key: str | None = None
    mime_type: str | None = None
    # A name from THUMBNAIL_PROFILES (else THUMBNAIL_SIZES), and the point `cover` crops
    # centre on ({"x", "y"}, fractions of the upright picture). Both are checked after the
    # claim, so a bad value fails the row readably instead of dead-lettering the message.
    profile: str | None = None
    focus: Any = None

    @field_validator("media_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("mediaId is empty")
        return value


class FitMode(StrEnum):
    """How a size frames the picture: inside the box, or exactly the box, cropped."""

    FIT = "fit"  # inside the box, aspect kept, never upscaled
    COVER = "cover"  # exactly the box's aspect, centred (or on the message's focus point)
    SMART = "smart"  # exactly the box's aspect, placed on the picture's interest and faces


SIZE_FORMATS = ("webp", "jpeg", "avif", "png", "gif")
ANIMATED_FORMATS = ("webp", "gif")  # webp when an animated size names no format
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_BOX_RE = re.compile(r"^(\d+)\s*[xX]\s*(\d+)$")
SIZE_GRAMMAR = "name:WIDTHxHEIGHT[:fit|cover|smart][:format][:quality][:animated]"


class ThumbnailSize(BaseModel):
    """A named box and how to fill it: `fit` inside it (aspect kept, never upscaled), or
    `cover`/`smart` crop to its aspect; optionally its own format, quality, and animation."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)
    format: str | None = Field(None, pattern=r"^(webp|jpeg|avif|png|gif)$")  # else THUMBNAIL_FORMAT
    quality: int | None = Field(None, ge=1, le=100)  # else THUMBNAIL_QUALITY
    mode: FitMode = FitMode.FIT
    animated: bool = False  # keep an animated original's animation (WebP, or GIF if asked)

    @classmethod
    def parse(cls, text: str) -> ThumbnailSize:
        """Parse `name:WxH` and then, in any order, a mode, a format, a quality, `animated`:
        e.g. `small:150x150`, `avatar:256x256:smart:webp:82`, `og:1200x630:cover:jpeg:85`."""
        parts = [part.strip() for part in text.strip().split(":")]
        box = _BOX_RE.match(parts[1]) if len(parts) > 1 else None
        if not box or not _NAME_RE.match(parts[0]):
            raise ValueError(f"{text.strip()!r} is not {SIZE_GRAMMAR}")
        options: dict[str, Any] = {}
        for part in parts[2:]:
            key, value = _size_option(part, text)
            if key in options:
                raise ValueError(f"{text.strip()!r} gives its {key} twice")
            options[key] = value
        if options.get("format") == "gif" and not options.get("animated"):
            raise ValueError(f"{text.strip()!r}: gif is for animated sizes (add :animated)")
        if options.get("animated") and options.get("format") not in (None, *ANIMATED_FORMATS):
            raise ValueError(f"{text.strip()!r}: an animation cannot be {options['format']}; "
                             f"animated sizes are {' or '.join(ANIMATED_FORMATS)}")
        try:
            return cls(name=parts[0], width=int(box.group(1)), height=int(box.group(2)),
                       **options)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise ValueError(f"{text.strip()!r}: {problem['loc'][0]} "
                             f"{problem['msg'].lower()}") from None

    @classmethod
    def parse_list(cls, text: str) -> list[ThumbnailSize]:
        """Parse `small:150x150,medium:480x480`; names must be unique."""
        sizes = [cls.parse(part) for part in text.split(",") if part.strip()]
        if not sizes:
            raise ValueError("no sizes given")
        names = [size.name for size in sizes]
        if len(set(names)) != len(names):
            raise ValueError(f"size names repeat: {names}")
        return sizes

    def __str__(self) -> str:
        extra = [self.mode.value] if self.mode is not FitMode.FIT else []
        extra += [str(part) for part in (self.format, self.quality) if part is not None]
        extra += ["animated"] if self.animated else []
        return ":".join([f"{self.name}:{self.width}x{self.height}", *extra])


def _size_option(part: str, text: str) -> tuple[str, Any]:
    """One option of a size: which field it sets and to what."""
    word = part.lower()
    if word in {mode.value for mode in FitMode}:
        return "mode", FitMode(word)
    if word in SIZE_FORMATS:
        return "format", word
    if word == "animated":
        return "animated", True
    if word.isdigit():
        return "quality", int(word)
    raise ValueError(f"{text.strip()!r}: {part!r} is not a mode (fit, cover, smart), a format "
                     f"({', '.join(SIZE_FORMATS)}), a quality (1-100) or 'animated'")


class Crop(WireModel):
    """A crop rectangle in upright source pixels."""

    x: int
    y: int
    width: int
    height: int


class ThumbnailData(WireModel):
    """One stored thumbnail, as recorded in the row's `thumbnails` JSON array. Consumers that
    read only the first eight fields keep working; the others are absent when they do not
    apply (no `crop` for `fit`, no `frames` for a still)."""

    size: str
    width: int
    height: int
    format: str
    mime_type: str
    bucket: str
    key: str
    bytes: int
    kind: str | None = None  # image | animation | preview | storyboard | storyboard-vtt
    crop: Crop | None = None
    frames: int | None = None
    duration_ms: int | None = None


class MediaRecord(WireModel):
    """A `Media` row as the worker sees it."""

    id: str
    bucket: str
    key: str
    mime_type: str | None = None
    size: int | None = None
    status: MediaStatus = MediaStatus.PENDING
    thumbnails: list[ThumbnailData] | None = None
    metadata: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    lease_until: datetime | None = None
    processed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
