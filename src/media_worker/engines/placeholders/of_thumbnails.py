"""The row's placeholders and picture facts, from the thumbnails a render made.

Taken after the render, from what it encoded, so every engine path (stills, RAW, PDF, video
frames, animations) gets the same keys without each one carrying a second result. The facts
read a small copy (facts.py), so the smallest whole-picture thumbnail that still has that many
pixels serves them best: decoding it costs less than reading the large picture's pixels would,
and near-duplicates keep their pHash across sizes (docs/media.md, "Perceptual hashes"). Only a
job whose sizes are all crops takes its facts from a crop: what the app shows of the picture.
"""

from __future__ import annotations

from typing import Any

import pyvips

from media_worker.engines.phash import REDUCED
from media_worker.engines.placeholders.blurhash import PICTURE_KINDS, blurhash_of
from media_worker.engines.placeholders.facts import picture_metadata
from media_worker.engines.port import RenderedThumbnail

# The short side a thumbnail needs to serve as the facts' source: half again the pHash's
# reduced copy, so a lossy thumbnail's artefacts and its own resize average out there and a
# photo's hash does not move with the sizes configured, while the decode stays the cheapest
# (a default job's `small`).
SOURCE_SIDE = REDUCED + REDUCED // 2


def placeholder_metadata(thumbnails: list[RenderedThumbnail],
                         kinds: frozenset[str]) -> dict[str, Any]:
    """`placeholder` (BlurHash, when `kinds` has it), the ThumbHash and colours `kinds` asks
    for, and `phash`; nothing when the render made no picture."""
    pictures = [thumb for thumb in thumbnails if thumb.kind in PICTURE_KINDS]
    if not pictures:
        return {}
    metadata: dict[str, Any] = {}
    if "blurhash" in kinds:
        metadata["placeholder"] = {"type": "blurhash", "value": blurhash_of(pictures)}
    source = facts_source(pictures)
    picture = pyvips.Image.new_from_buffer(source.data, "")  # the first frame of an animation
    return metadata | picture_metadata(picture, kinds)


def facts_source(pictures: list[RenderedThumbnail]) -> RenderedThumbnail:
    """The smallest uncropped picture with at least SOURCE_SIDE pixels on its short side (else
    the largest uncropped one); crops only when every size is one."""
    whole = [thumb for thumb in pictures if thumb.crop is None] or pictures
    big_enough = [thumb for thumb in whole if min(thumb.width, thumb.height) >= SOURCE_SIDE]
    if big_enough:
        return min(big_enough, key=lambda thumb: thumb.width * thumb.height)
    return max(whole, key=lambda thumb: thumb.width * thumb.height)
