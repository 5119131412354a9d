"""Storing a job's renditions: one object per rendition, under the key template, and the
`ThumbnailData` entry the row records for it.

Apart from the processor so its status machine reads in one sitting; the key of every
rendition (sizes, `preview`, `storyboard-N`, `storyboard`) comes from the template alone.
"""

from __future__ import annotations

from media_worker.engines.port import RenderedThumbnail, RenderResult
from media_worker.observability.metrics import WorkerMetrics
from media_worker.storage.port import ObjectStorage
from media_worker.types import ThumbnailData

# File extensions that differ from the format's name (`jpg` is what people and CDNs expect).
EXTENSIONS = {"jpeg": "jpg"}


def rendition_key(template: str, media_id: str, thumb: RenderedThumbnail) -> str:
    """Where a rendition is stored: `thumbnails/{media_id}/{size}.{ext}` by default."""
    return template.format(media_id=media_id, size=thumb.size.name,
                           ext=EXTENSIONS.get(thumb.format, thumb.format))


def upload_renditions(storage: ObjectStorage, metrics: WorkerMetrics, *, bucket: str,
                      key_template: str, media_id: str,
                      result: RenderResult) -> list[ThumbnailData]:
    """Upload every rendition in order; the entries the row's `thumbnails` array records."""
    stored = []
    for thumb in result.thumbnails:
        key = rendition_key(key_template, media_id, thumb)
        storage.upload(bucket, key, thumb.data, thumb.mime_type)
        # One label for every storyboard sheet: their number grows with the video's length.
        metrics.thumbnail_stored("storyboard" if thumb.kind == "storyboard" else thumb.size.name)
        metrics.add_output_bytes(len(thumb.data))
        stored.append(ThumbnailData(
            size=thumb.size.name, width=thumb.width, height=thumb.height,
            format=thumb.format, mime_type=thumb.mime_type, bucket=bucket, key=key,
            bytes=len(thumb.data), kind=thumb.kind, crop=thumb.crop,
            frames=thumb.frames, duration_ms=thumb.duration_ms,
        ))
    return stored
