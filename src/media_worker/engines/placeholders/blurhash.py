"""A compact placeholder an app can paint while the real thumbnail loads.

BlurHash (the `blurhash` package, MIT, pure Python, widely used by apps that decode it); the
ThumbHash beside it is `thumbhash.py` (the PyPI package crashes on alpha). The hash is
computed from the smallest thumbnail already encoded, shrunk to at most 16x16: BlurHash keeps
only 4x3 low-frequency components, which 16x12 pixels carry as well as 32x24 (the strings
differ in the last digits), and the pure-Python encoder is several times cheaper there
(docs/performance.md; the C binding `blurhash-python` is faster still but calls a Pillow API
removed in Pillow 14).
Transparent pixels are flattened onto white, as BlurHash has no alpha.
"""

from __future__ import annotations

import io

import blurhash
from PIL import Image

from media_worker.engines.port import RenderedThumbnail

SIDE = 16
COMPONENTS = (4, 3)


# What the hash may be taken from: pictures libvips reads (not a clip's MP4, nor a WebVTT).
PICTURE_KINDS = ("image", "animation")


def blurhash_of(thumbnails: list[RenderedThumbnail]) -> str:
    """BlurHash of the smallest thumbnail, 4x3 components (4x3 for landscape, 3x4 portrait)."""
    pictures = [thumb for thumb in thumbnails if thumb.kind in PICTURE_KINDS]
    smallest = min(pictures, key=lambda thumb: thumb.width * thumb.height)
    # Pillow, not libvips: on a picture this small each libvips call costs more than Pillow's
    # whole decode and resize (docs/performance.md, bench 19).
    with Image.open(io.BytesIO(smallest.data)) as opened:
        picture = opened.convert("RGBA")
    picture.thumbnail((SIDE, SIDE), Image.Resampling.BOX)
    flat = Image.new("RGB", picture.size, (255, 255, 255))
    flat.paste(picture, mask=picture.getchannel("A"))
    width, height = flat.size
    data = flat.tobytes()
    rows = [[data[(y * width + x) * 3:(y * width + x) * 3 + 3] for x in range(width)]
            for y in range(height)]
    x_components, y_components = COMPONENTS if width >= height else COMPONENTS[::-1]
    return blurhash.encode(rows, components_x=x_components, components_y=y_components)
