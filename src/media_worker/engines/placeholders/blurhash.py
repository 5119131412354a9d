"""A compact placeholder an app can paint while the real thumbnail loads.

BlurHash, as the `blurhash` package (MIT, pure Python, widely used by apps that decode it)
encodes it, to the last character: `encode` is that package's `blurhash_encode` with its
sums done by numpy (tests/unit/test_placeholder.py compares the two on random pictures and
the corpus). Its pure-Python loops cost about 0.8 ms for 16x12 pixels, more than any other
fact of a job; numpy does the same arithmetic in under 0.1 ms. Exact, because every
operation is the package's in its order: the same sRGB-to-linear values (a table of its own
function), cosines from `math.cos` of the same expressions, each product grouped as it
groups them, and each component summed pixel after pixel (`np.cumsum`, not numpy's pairwise
`sum`). The ThumbHash beside it is `thumbhash.py` (the PyPI package crashes on alpha).

The hash is computed from the smallest thumbnail already encoded, shrunk to at most 16x16:
BlurHash keeps only 4x3 low-frequency components, which 16x12 pixels carry as well as 32x24
(the strings differ in the last digits). Transparent pixels are flattened onto white, as
BlurHash has no alpha.
"""

from __future__ import annotations

import math
from functools import cache

import blurhash
import numpy as np
from PIL import Image

SIDE = 16
COMPONENTS = (4, 3)
# What the hash may be taken from: pictures libvips reads (not a clip's MP4, nor a WebVTT).
PICTURE_KINDS = ("image", "animation")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
# The package's sRGB code value to linear light, for each of the 256.
LINEAR = np.array([blurhash.srgb_to_linear(value) for value in range(256)])


def blurhash_of_picture(picture: Image.Image) -> str:
    """BlurHash of a decoded thumbnail (Pillow, RGB or RGBA), 4x3 components (4x3 for
    landscape, 3x4 portrait)."""
    small = picture.copy()
    small.thumbnail((SIDE, SIDE), Image.Resampling.BOX)
    if "A" in small.getbands():
        flat = Image.new("RGB", small.size, (255, 255, 255))
        flat.paste(small, mask=small.getchannel("A"))
        small = flat
    elif small.mode != "RGB":
        small = small.convert("RGB")
    x_components, y_components = COMPONENTS if small.width >= small.height else COMPONENTS[::-1]
    return encode(np.asarray(small), x_components, y_components)


def encode(rgb: np.ndarray, components_x: int, components_y: int) -> str:
    """`blurhash.encode` of an (h, w, 3) uint8 sRGB picture, character for character."""
    if not (1 <= components_x <= 9 and 1 <= components_y <= 9):
        raise ValueError("x and y component counts must be between 1 and 9 inclusive.")
    height, width = rgb.shape[:2]
    linear = LINEAR[rgb.reshape(-1, 3)]  # (pixels, 3), row by row as the package walks
    products = _bases(width, height, components_x, components_y)[:, :, None] * linear[None]
    sums = np.cumsum(products, axis=1)[:, -1, :]  # each pixel after the last, as it adds
    components = (sums / float(width * height)).tolist()
    max_ac = max((abs(value) for component in components[1:] for value in component),
                 default=0.0)
    dc = components[0]
    dc_value = ((blurhash.linear_to_srgb(dc[0]) << 16) + (blurhash.linear_to_srgb(dc[1]) << 8)
                + blurhash.linear_to_srgb(dc[2]))
    quantised_max = int(max(0, min(82, math.floor(max_ac * 166 - 0.5))))
    ac_norm = float(quantised_max + 1) / 166.0
    ac_values = [_quantised(r, ac_norm) * 19 * 19 + _quantised(g, ac_norm) * 19
                 + _quantised(b, ac_norm) for r, g, b in components[1:]]
    return (_base83((components_x - 1) + (components_y - 1) * 9, 1)
            + _base83(quantised_max, 1) + _base83(dc_value, 4)
            + "".join(_base83(value, 2) for value in ac_values))


@cache
def _bases(width: int, height: int, components_x: int, components_y: int) -> np.ndarray:
    """Every component's basis (components, pixels), in the package's order (j, then i)."""
    bases = np.stack([_basis(width, height, i, j) for j in range(components_y)
                      for i in range(components_x)])
    bases.flags.writeable = False
    return bases


def _basis(width: int, height: int, i: int, j: int) -> np.ndarray:
    """The package's `norm_factor * cos(pi * i * x / width) * cos(pi * j * y / height)` of
    every pixel, row by row."""
    norm = 1.0 if i == 0 and j == 0 else 2.0
    across = np.array([norm * math.cos(math.pi * float(i) * float(x) / float(width))
                       for x in range(width)])
    down = np.array([math.cos(math.pi * float(j) * float(y) / float(height))
                     for y in range(height)])
    return (across[None, :] * down[:, None]).reshape(-1)


def _quantised(value: float, norm: float) -> int:
    signed_root = math.copysign(math.pow(abs(value / norm), 0.5), value / norm)
    return int(max(0.0, min(18.0, math.floor(signed_root * 9.0 + 9.5))))


def _base83(value: int, length: int) -> str:
    if int(value) // (83 ** length) != 0:
        raise ValueError("Specified length is too short to encode given value.")
    return "".join(ALPHABET[int(value) // (83 ** (length - i)) % 83]
                   for i in range(1, length + 1))
