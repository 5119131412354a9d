"""The values that cross the worker's boundaries: queue messages, media rows, thumbnails.

Field names are snake_case in Python and camelCase on the wire, because the producer is a
NestJS/Prisma API and the queue message and JSON columns are read by it too.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
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

    @field_validator("media_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("mediaId is empty")
        return value


_SIZE_RE = re.compile(
    r"^\s*([A-Za-z0-9_-]+)\s*:\s*(\d+)\s*[xX]\s*(\d+)\s*"
    r"(?::\s*(webp|jpeg|avif|png)\s*)?(?::\s*(\d+)\s*)?$", re.I)


class ThumbnailSize(BaseModel):
    """A named bounding box: the thumbnail fits inside it, keeps its aspect, is never upscaled."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)
    format: str | None = Field(None, pattern=r"^(webp|jpeg|avif|png)$")  # else THUMBNAIL_FORMAT
    quality: int | None = Field(None, ge=1, le=100)  # else THUMBNAIL_QUALITY

    @classmethod
    def parse(cls, text: str) -> ThumbnailSize:
        """Parse `name:WxH[:format[:quality]]`, e.g. `small:150x150` or `og:1200x630:jpeg:85`."""
        match = _SIZE_RE.match(text)
        if not match:
            raise ValueError(f"{text.strip()!r} is not name:WIDTHxHEIGHT[:format[:quality]]")
        name, width, height, fmt, quality = match.groups()
        return cls(name=name, width=int(width), height=int(height),
                   format=fmt.lower() if fmt else None,
                   quality=int(quality) if quality else None)

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
        extra = "".join(f":{part}" for part in (self.format, self.quality) if part is not None)
        return f"{self.name}:{self.width}x{self.height}{extra}"


class ThumbnailData(WireModel):
    """One stored thumbnail, as recorded in the row's `thumbnails` JSON array."""

    size: str
    width: int
    height: int
    format: str
    mime_type: str
    bucket: str
    key: str
    bytes: int


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
