"""An HDR video frame (PQ, HLG, Dolby Vision) to its thumbnails, tone-mapped to SDR.

The frame is scaled by FFmpeg straight to the largest thumbnail's size (never decoded to full
size in float), kept as 16-bit YCbCr 4:4:4, and turned into RGB code values here with the
matrix and range the stream declares: swscale's own RGB output of 10-bit video lands white at
65283 of 65535 (0.4% low, about 2.5% of light at PQ's mid-tones), while its 16-bit YCbCr is the
coded value shifted, exactly. Then the colour core linearises, tone-maps and gamut-maps it
(`hdr_renditions`), and the display matrix turns both renditions upright.

Imported for HDR frames only: SDR video never loads the HDR maths.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pyvips

from media_worker.engines.color.detect_video import VideoColour
from media_worker.engines.color.signal import HdrPicture, hdr_renditions, hdr_to_sdr
from media_worker.engines.display import DisplayTransform, display_transform
from media_worker.engines.encode import Framing, largest_box, render_sizes, scale_for
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.probe import display_size
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

# Kr, Kb of each YCbCr matrix (H.273 code point); others are treated as BT.2020's.
LUMA_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
                7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
MATRIX_RGB = 0


def render_hdr_frame(frame: Any, sar: Fraction, colour: VideoColour,
                     sizes: list[ThumbnailSize], output: OutputSpec, *,
                     focus: Focus | None = None
                     ) -> tuple[list[RenderedThumbnail], tuple[int, int], DisplayTransform]:
    """Every size of an HDR frame, the upright display size, and the display transform."""
    width, height = display_size(frame.width, frame.height, sar)
    transform = display_transform(frame)
    upright = (height, width) if transform.swaps_sides else (width, height)
    box = largest_box(*upright, sizes)
    scale = scale_for(*upright, box)
    coded = (max(1, round(width * scale)), max(1, round(height * scale)))
    code = upright_array(frame_code_values(frame, colour, *coded), transform)
    sdr, picture = hdr_renditions(code, colour.signal, output.tonemap)
    image = pyvips.Image.new_from_memory(np.ascontiguousarray(sdr).data, sdr.shape[1],
                                         sdr.shape[0], 3, "uchar")
    thumbnails = render_sizes(image.copy(interpretation="srgb"), sizes, output,
                              hdr=HdrPicture(np.ascontiguousarray(picture.linear), picture.peak),
                              framing=Framing(*upright, focus))
    return thumbnails, upright, transform


def tone_mapped_picture(frame: Any, colour: VideoColour, coded: tuple[int, int],
                        transform: DisplayTransform, tonemap: str) -> pyvips.Image:
    """One HDR frame scaled to `coded`, tone-mapped to 8-bit sRGB and turned upright: a frame
    of a preview clip or a storyboard tile, as the stills are made."""
    code = upright_array(frame_code_values(frame, colour, *coded), transform)
    sdr = np.ascontiguousarray(hdr_to_sdr(code, colour.signal, tonemap))
    image = pyvips.Image.new_from_memory(sdr.data, sdr.shape[1], sdr.shape[0], 3, "uchar")
    return image.copy(interpretation="srgb")


def frame_code_values(frame: Any, colour: VideoColour, width: int, height: int) -> np.ndarray:
    """(height, width, 3) float32 R'G'B' code values 0..1 of the frame scaled to that size."""
    if colour.matrix_code == MATRIX_RGB and not colour.luma_only:
        rgb = frame.reformat(width=width, height=height, format="rgb48le",
                             interpolation="BICUBIC")
        return _plane(rgb.planes[0], width * 3, height).reshape(height, width, 3) / 65535.0
    yuv = frame.reformat(width=width, height=height, format="yuv444p16le",
                         interpolation="BICUBIC")
    luma = _plane(yuv.planes[0], width, height)
    bits = frame.format.components[0].bits
    if colour.full_range:  # n-bit full range, shifted into 16 bits: (2^n - 1) << (16 - n)
        top = float(((1 << bits) - 1) << (16 - bits))
        y, half = luma / top, float(1 << 15)
        scale_c = top
    else:  # limited range: black 16, white 235, chroma 128 ± 112, at any depth
        y, half = (luma - 4096.0) / 56064.0, float(1 << 15)
        scale_c = 57344.0
    if colour.luma_only:
        return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1)
    cb = (_plane(yuv.planes[1], width, height) - half) / scale_c
    cr = (_plane(yuv.planes[2], width, height) - half) / scale_c
    kr, kb = LUMA_WEIGHTS.get(colour.matrix_code, LUMA_WEIGHTS[9])
    red = y + 2 * (1 - kr) * cr
    blue = y + 2 * (1 - kb) * cb
    green = (y - kr * red - kb * blue) / (1 - kr - kb)
    return np.clip(np.stack([red, green, blue], axis=-1), 0.0, 1.0)


def upright_array(array: np.ndarray, transform: DisplayTransform) -> np.ndarray:
    """The display transform's steps on an (H, W, …) array, as DisplayTransform.apply does
    them on a libvips image (d90 etc. clockwise)."""
    for step in transform.steps:
        if step == "fliphor":
            array = array[:, ::-1]
        elif step == "flipver":
            array = array[::-1]
        else:
            array = np.rot90(array, k=-int(step[1:]) // 90)
    return array


def _plane(plane: Any, row_samples: int, rows: int) -> np.ndarray:
    """A 16-bit plane as float32, without FFmpeg's line padding."""
    samples = np.frombuffer(plane, dtype="<u2").reshape(-1, plane.line_size // 2)
    return samples[:rows, :row_samples].astype(np.float32)
