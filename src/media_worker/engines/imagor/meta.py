"""The service's `/meta` answer, mapped onto the row's metadata fields.

imagor and imagorvideo report the *coded* width and height with an EXIF-style `orientation`:
for 5-8 (a quarter turn) they are swapped to the upright size, as stored everywhere else.
imagorvideo's `duration` is in milliseconds. Thumbor nests its answer under `thumbor.source`
and reports the size already upright.
"""

from __future__ import annotations

from typing import Any

from media_worker.engines.probe import ORIENTATION_SWAPS

MILLISECONDS = 1000


def metadata_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The fields of a /meta answer the row's metadata takes, under the row's names."""
    thumbor = meta.get("thumbor")
    if isinstance(thumbor, dict):
        return _from_thumbor_meta(thumbor.get("source") or {})
    mapped: dict[str, Any] = {}
    width, height = meta.get("width"), meta.get("height")
    orientation = meta.get("orientation")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        if orientation in ORIENTATION_SWAPS:
            width, height = height, width
        mapped |= {"width": width, "height": height}
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        mapped["orientation"] = orientation
    if isinstance(meta.get("duration"), int | float) and meta["duration"] > 0:
        mapped["duration"] = round(meta["duration"] / MILLISECONDS, 3)
    if isinstance(meta.get("fps"), int | float) and meta["fps"] > 0:
        mapped["frameRate"] = round(float(meta["fps"]), 3)
    for source_key, key in (("has_audio", "hasAudio"), ("has_alpha", "hasAlpha"),
                            ("pages", "pages")):
        if source_key in meta:
            mapped[key] = meta[source_key]
    return mapped


def _from_thumbor_meta(source: dict[str, Any]) -> dict[str, Any]:
    mapped: dict[str, Any] = {}
    if isinstance(source.get("width"), int) and isinstance(source.get("height"), int):
        mapped |= {"width": source["width"], "height": source["height"]}
    if isinstance(source.get("frameCount"), int):
        mapped["pages"] = source["frameCount"]
    return mapped
