"""Checking an answer: a 200 is not a thumbnail until it is an image of the requested format
that decodes and fits its box at the size the original implies. imagorvideo answers an FFmpeg
failure with a 1x1 fallback pixel; that is refused, never stored."""

from __future__ import annotations

import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.encode import MIME_TYPES
from media_worker.engines.imagor.client import Response
from media_worker.engines.imagor.crops import expected_size
from media_worker.engines.imagor.original import Probe
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.sniff import HEAD_BYTES, sniff_bytes
from media_worker.errors import ConfigurationError, EngineUnavailableError, UnsupportedMediaError
from media_worker.types import Crop, ThumbnailSize

SIZE_TOLERANCE = 1  # pixels: services round a fitted side up or down


def check_thumbnail(response: Response, probe: Probe, size: ThumbnailSize,
                    output: OutputSpec, crop: Crop | None = None) -> RenderedThumbnail:
    """The answer as a thumbnail, or the reason it is not one."""
    if not response.content_type.lower().startswith("image/"):
        raise ConfigurationError(
            f"the service answered {size.name} with {response.content_type or 'no content type'}"
            ", not an image; check IMAGORVIDEO_URL")
    _check_format(response.body, output.format)
    width, height = _decoded_size(response.body)
    _check_size(width, height, size, probe)
    return RenderedThumbnail(size=size, width=width, height=height, format=output.format.value,
                             mime_type=MIME_TYPES[output.format], data=response.body,
                             crop=crop)


def fit_in(width: int, height: int, box: ThumbnailSize) -> tuple[int, int]:
    """The size of a `width`x`height` picture fitted inside `box`, never upscaled."""
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_format(body: bytes, wanted: ThumbnailFormat) -> None:
    try:
        got = sniff_bytes(body[:HEAD_BYTES]).format
    except UnsupportedMediaError:
        got = "unknown bytes"
    if got != wanted.value:
        raise ConfigurationError(f"asked the service for {wanted.value}, it answered {got}")


def _decoded_size(body: bytes) -> tuple[int, int]:
    """Decode every pixel (a truncated answer fails here) and return the first page's size."""
    try:
        image = pyvips.Image.new_from_buffer(body, "", fail_on="error")  # first page only
        image.avg()
    except pyvips.Error as exc:
        detail = (exc.detail or exc.message or "").strip().splitlines()
        raise EngineUnavailableError(
            f"the service's answer does not decode: {detail[0] if detail else 'libvips error'}"
        ) from None
    return image.width, image.height


def _check_size(width: int, height: int, size: ThumbnailSize, probe: Probe) -> None:
    expected = [expected_size(w, h, size) for w, h in probe.candidates]
    if (width, height) == (1, 1) and (1, 1) not in expected:
        raise UnsupportedMediaError(
            f"the service could not render this {probe.media_type.format.upper()}: it answered "
            "with a 1x1 fallback image")
    if width > size.width + SIZE_TOLERANCE or height > size.height + SIZE_TOLERANCE:
        raise ConfigurationError(f"the service answered {width}x{height} for the {size} box")
    if expected and not any(_close(width, height, w, h) for w, h in expected):
        wanted = " or ".join(f"{w}x{h}" for w, h in expected)
        raise ConfigurationError(
            f"the service answered {width}x{height} for the {size} box where {wanted} was "
            "expected: it must rotate by EXIF and never upscale (Thumbor: "
            "RESPECT_ORIENTATION = True)")


def _close(width: int, height: int, want_w: int, want_h: int) -> bool:
    return abs(width - want_w) <= SIZE_TOLERANCE and abs(height - want_h) <= SIZE_TOLERANCE
