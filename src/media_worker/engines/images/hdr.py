"""PQ and HLG stills: decoded with their full bit depth, reduced to the largest thumbnail, then
tone-mapped to SDR by `color/signal.py` (numpy, at thumbnail size only).

libvips' `thumbnail` would hand back 8-bit sRGB: a 10-bit PQ picture loses its highlights'
precision there and is shown as if its code values were sRGB (grey and flat). So the picture is
opened as stored (16-bit), turned upright, and shrunk with libvips' `resize` (the same
block-shrink plus Lanczos3 reduce that `thumbnail` runs, on code values, as `thumbnail` does);
only then do its pixels become a numpy array. Imported on the first HDR still: SDR jobs never
load numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyvips

from media_worker.engines.color.signal import HdrPicture, Signal, hdr_renditions
from media_worker.engines.encode import scale_for
from media_worker.types import ThumbnailSize

if TYPE_CHECKING:
    from media_worker.engines.port import OutputSpec

_UCHAR_MAX = 255
_USHORT_BITS = 16


def decode_code_values(image: pyvips.Image, box: ThumbnailSize, bits: int
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """`image` (as loaded, any orientation) upright and fitted to `box`, as (H, W, 3) float32
    code values 0..1 and the alpha channel (H, W) uint8, or None without alpha. `bits` is the
    sample depth the file was coded with: libvips and libheif shift 10- and 12-bit samples to
    the top of 16 bits, so full scale is (2^bits - 1) << (16 - bits), not 65535."""
    if image.get_typeof("orientation"):
        image = image.autorot()
    scale = scale_for(image.width, image.height, box)
    if scale < 1:
        image = image.resize(scale)
    full_scale = _full_scale(image.format, bits)
    pixels = image.numpy()
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    has_alpha = image.hasalpha()
    colour = pixels[..., :-1] if has_alpha else pixels
    if colour.shape[-1] == 1:  # grey: the same code value on every channel
        colour = np.repeat(colour, 3, axis=-1)
    code = np.minimum(colour[..., :3].astype(np.float32) / np.float32(full_scale), 1.0)
    alpha = None
    if has_alpha:
        alpha = np.rint(np.clip(pixels[..., -1] / full_scale, 0.0, 1.0) * _UCHAR_MAX)
        alpha = alpha.astype(np.uint8)
    return code, alpha


def tone_mapped(code: np.ndarray, alpha: np.ndarray | None, signal: Signal,
                output: OutputSpec) -> tuple[pyvips.Image, HdrPicture]:
    """The SDR picture as an 8-bit sRGB libvips image (alpha kept), and the HDR one."""
    sdr, picture = hdr_renditions(code, signal, output.tonemap)
    if alpha is not None:
        sdr = np.concatenate([sdr, alpha[..., None]], axis=-1)
    image = pyvips.Image.new_from_array(np.ascontiguousarray(sdr))
    return image.copy(interpretation="srgb"), picture


def _full_scale(pixel_format: str, bits: int) -> float:
    if pixel_format == "uchar":
        return float(_UCHAR_MAX)
    if pixel_format in ("float", "double"):
        return 1.0
    if 8 < bits < _USHORT_BITS:
        return float(((1 << bits) - 1) << (_USHORT_BITS - bits))
    return 65535.0
