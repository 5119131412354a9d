"""Whether an original is an animation, from its header: frame count, canvas, timing, loop.

Only the formats that animate are asked (a multi-page TIFF or a HEIC with several pictures
holds pages, not frames). libvips reads GIF and WebP; APNG and animated AVIF are Pillow's,
since the libvips of pyvips-binary loads neither animation. Nothing here decodes a pixel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pyvips

from media_worker.engines.probe import open_with_pillow
from media_worker.engines.sniff import MediaType

VIPS_ANIMATIONS = frozenset({"gif", "webp"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Browsers play a GIF frame of 10 ms or less (0: "as fast as you can") for 100 ms, and treat
# animated WebP and APNG alike; the output is written with the delays as they are played.
FASTEST_PLAYED_MS = 10
PLAYED_INSTEAD_MS = 100


@dataclass(frozen=True)
class AnimationFacts:
    """An animation as its header tells it. `delays` (ms, as played) are known up front for
    libvips' formats and empty for Pillow's, whose frames say theirs as they are decoded;
    `first` is 1 where an APNG's default picture is not part of the animation."""

    width: int
    height: int
    frames: int
    loop: int  # 0: forever
    decoder: str  # "vips" or "pillow"
    delays: tuple[int, ...] = ()
    first: int = 0


def animation_of(path: Path, media_type: MediaType) -> AnimationFacts | None:
    """The animation at `path`, or None for a still (one frame, or a format that does not
    animate). Raises pyvips.Error or Pillow's errors on a header neither can read."""
    if media_type.format in VIPS_ANIMATIONS:
        return _vips_animation(path)
    if media_type.format == "png" and _apng_frames(path) > 1:
        return _pillow_animation(path, media_type)
    if media_type.format == "avif" and media_type.brand == "avis":
        return _pillow_animation(path, media_type)
    return None


def played_delay(delay_ms: float | None) -> int:
    """A frame's delay as browsers play it (see FASTEST_PLAYED_MS)."""
    delay = round(delay_ms or 0)
    return PLAYED_INSTEAD_MS if delay <= FASTEST_PLAYED_MS else delay


def _vips_animation(path: Path) -> AnimationFacts | None:
    header = pyvips.Image.new_from_file(str(path), access="sequential")
    pages = int(header.get("n-pages")) if header.get_typeof("n-pages") else 1
    if pages < 2:
        return None
    delays = list(header.get("delay")) if header.get_typeof("delay") else []
    delays += [0] * (pages - len(delays))
    loop = int(header.get("loop")) if header.get_typeof("loop") else 0
    return AnimationFacts(header.width, header.height, pages, loop, "vips",
                          tuple(played_delay(delay) for delay in delays[:pages]))


def _pillow_animation(path: Path, media_type: MediaType) -> AnimationFacts | None:
    with open_with_pillow(path, media_type) as opened:
        first = 1 if opened.info.get("default_image") else 0
        frames = getattr(opened, "n_frames", 1) - first
        if frames < 2:
            return None
        return AnimationFacts(opened.width, opened.height, frames,
                              int(opened.info.get("loop", 0)), "pillow", first=first)


def _apng_frames(path: Path) -> int:
    """acTL's frame count when the PNG is animated (the chunk comes before the first IDAT),
    else 1; reads chunk headers only."""
    with path.open("rb") as handle:
        if handle.read(8) != PNG_SIGNATURE:
            return 1
        while True:
            head = handle.read(8)
            if len(head) < 8:
                return 1
            length, kind = struct.unpack(">I4s", head)
            if kind == b"acTL":
                body = handle.read(8)
                return struct.unpack(">I", body[:4])[0] if len(body) == 8 else 1
            if kind in (b"IDAT", b"IEND"):
                return 1
            handle.seek(length + 4, 1)  # the chunk's data and CRC
