"""The row's placeholders and picture facts, from the thumbnails a render made.

Taken after the render, from what it encoded, so every engine path (stills, RAW, PDF, video
frames, animations) gets the same keys without each one carrying a second result. The facts
read a small copy (facts.py), so the smallest whole-picture thumbnail that still has that many
pixels serves them best: decoding it costs less than reading the large picture's pixels would,
and near-duplicates keep their pHash across sizes (docs/media.md, "Perceptual hashes"). Only a
job whose sizes are all crops takes its facts from a crop: what the app shows of the picture.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from media_worker.engines.phash import REDUCED
from media_worker.engines.placeholders.blurhash import PICTURE_KINDS, blurhash_of_picture
from media_worker.engines.placeholders.facts import pixel_metadata
from media_worker.engines.port import RenderedThumbnail

# The short side a thumbnail needs to serve as the facts' source: half again the pHash's
# reduced copy, so a lossy thumbnail's artefacts and its own resize average out there and a
# photo's hash does not move with the sizes configured, while the decode stays the cheapest
# (a default job's `small`).
SOURCE_SIDE = REDUCED + REDUCED // 2


def placeholder_metadata(thumbnails: list[RenderedThumbnail],
                         kinds: frozenset[str]) -> dict[str, Any]:
    """`placeholder` (BlurHash, when `kinds` has it), the ThumbHash and colours `kinds` asks
    for, and `phash`; nothing when the render made no picture. Each thumbnail read is decoded
    once: the BlurHash's (the smallest) is usually the facts' too."""
    pictures = [thumb for thumb in thumbnails if thumb.kind in PICTURE_KINDS]
    if not pictures:
        return {}
    source = facts_source(pictures)
    decoded = decoded_thumbnail(source)
    metadata: dict[str, Any] = {}
    if "blurhash" in kinds:
        smallest = min(pictures, key=lambda thumb: thumb.width * thumb.height)
        picture = decoded if smallest is source else decoded_thumbnail(smallest)
        metadata["placeholder"] = {"type": "blurhash", "value": blurhash_of_picture(picture)}
    return metadata | pixel_metadata(reduced(decoded), kinds)


def decoded_thumbnail(thumb: RenderedThumbnail) -> Image.Image:
    """The thumbnail's first frame, decoded by Pillow as 8-bit RGB, or RGBA when it has
    transparency. Pillow, not libvips: on a picture this small, each libvips call costs more
    than Pillow's whole decode and resize (docs/performance.md, bench 19)."""
    with Image.open(io.BytesIO(thumb.data), formats=_pillow_format(thumb.format)) as opened:
        alpha = "A" in opened.getbands() or "transparency" in opened.info
        return opened.convert("RGBA" if alpha else "RGB")


def _pillow_format(name: str) -> list[str] | None:
    """The thumbnail's format as Pillow names it, so Image.open skips asking every plugin
    whether the bytes are its own; None (ask them all) for one Pillow does not name so."""
    Image.init()
    return [name.upper()] if name.upper() in Image.OPEN else None


def reduced(picture: Image.Image) -> np.ndarray:
    """A decoded thumbnail (RGB or RGBA) as an array, its short side brought down to REDUCED
    by Lanczos (alpha premultiplied, so colour under transparent pixels does not bleed)."""
    scale = REDUCED / min(picture.size)
    if scale < 1:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        if picture.mode == "RGBA":
            picture = picture.convert("RGBa").resize(size, Image.Resampling.LANCZOS)
            picture = picture.convert("RGBA")
        else:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(picture)


def facts_source(pictures: list[RenderedThumbnail]) -> RenderedThumbnail:
    """The smallest uncropped picture with at least SOURCE_SIDE pixels on its short side (else
    the largest uncropped one); crops only when every size is one."""
    whole = [thumb for thumb in pictures if thumb.crop is None] or pictures
    big_enough = [thumb for thumb in whole if min(thumb.width, thumb.height) >= SOURCE_SIDE]
    if big_enough:
        return min(big_enough, key=lambda thumb: thumb.width * thumb.height)
    return max(whole, key=lambda thumb: thumb.width * thumb.height)
