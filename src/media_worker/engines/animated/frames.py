"""Decoding an animation's frames once per job: only the frames the job keeps, composited.

libvips (GIF, WebP) and Pillow (APNG, animated AVIF) both hand out whole frames, each drawn
over the previous one as the file's disposal and blending say, so a frame is what a browser
shows at that moment. libvips decodes `n=` frames and no more (a GIF bomb's thousands of
frames past the cut are never decoded); Pillow is asked for one frame at a time.

The frames are held in memory, stacked top to bottom in one libvips image (a "strip", as
libvips itself holds animations): at full resolution when that is small, else each frame
reduced, as it is decoded, to the scale the most demanding animated size needs, so memory
follows the thumbnails' pixels rather than the canvas times the frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyvips
from PIL import Image

from media_worker.engines.animated.probe import AnimationFacts, played_delay
from media_worker.engines.decode_budget import MEGABYTE
from media_worker.engines.encode import to_srgb8
from media_worker.engines.probe import open_with_pillow
from media_worker.engines.sniff import MediaType

# Frames held at full resolution up to this many bytes (RGBA): resizing a held strip costs a
# few libvips operations per size, where reducing frame by frame costs a few per frame.
HOLD_FULL_BYTES = 64 * MEGABYTE
RGBA = 4
# The first non-blank frame is looked for among this many frames, then frame 0 stands.
BLANK_SEARCH = 8
UNIFORM_RANGE = 2  # code values a "blank" frame's bands may vary by (dithering, rounding)


@dataclass(frozen=True)
class Frames:
    """Decoded frames: 8-bit sRGB, alpha only where some frame has transparency, `count`
    frames of `strip.height / count` rows each, their delays (ms, as played) and the loop
    count (0: forever)."""

    strip: pyvips.Image
    count: int
    delays: tuple[int, ...]
    loop: int

    @property
    def width(self) -> int:
        return int(self.strip.width)

    @property
    def height(self) -> int:
        return int(self.strip.height) // self.count

    def frame(self, index: int) -> pyvips.Image:
        return self.strip.crop(0, index * self.height, self.width, self.height)


def held_size(facts: AnimationFacts, count: int, scale: float) -> tuple[int, int]:
    """The size each frame is held at: the canvas when `count` frames of it are small
    (HOLD_FULL_BYTES), else the canvas at `scale` (what the largest animated size needs)."""
    if facts.width * facts.height * count * RGBA <= HOLD_FULL_BYTES or scale >= 1:
        return facts.width, facts.height
    return (max(1, math.ceil(facts.width * scale - 1e-6)),
            max(1, math.ceil(facts.height * scale - 1e-6)))


def decode_frames(path: Path, media_type: MediaType, facts: AnimationFacts, *, count: int,
                  size: tuple[int, int]) -> Frames:
    """The first `count` frames, each held at `size` (`held_size`)."""
    delays: tuple[int, ...] | list[int] = facts.delays[:count]
    if facts.decoder == "pillow":
        pages, delays = _pillow_pages(path, media_type, facts, count, size)
        joined = pyvips.Image.arrayjoin(pages, across=1)
    else:
        strip = pyvips.Image.new_from_file(str(path), n=count, access="sequential",
                                           fail_on="none")
        if size == (facts.width, facts.height):
            joined = to_srgb8(_colour_managed(strip))
        else:  # frame by frame, in order, each reduced before the next is decoded
            joined = pyvips.Image.arrayjoin(
                [_fitted(page, size).copy_memory() for page in _vips_pages(strip, facts, count)],
                across=1)
    return Frames(_without_opaque_alpha(joined.copy_memory()), count, tuple(delays),
                  facts.loop)


def first_visible_frame(path: Path, media_type: MediaType, facts: AnimationFacts) -> int:
    """The index of the first frame that is not blank (wholly transparent, or one flat
    colour: what many GIFs open with) among the first BLANK_SEARCH, else 0. Frames are
    decoded one by one and the search stops at the first visible one."""
    count = min(BLANK_SEARCH, facts.frames)
    if facts.decoder == "vips":
        strip = pyvips.Image.new_from_file(str(path), n=count, access="sequential",
                                           fail_on="none")
        frames: Iterator[pyvips.Image] = iter(_vips_pages(strip, facts, count))
    else:
        frames = _pillow_frames(path, media_type, facts, count)
    return _first_visible_of(frames)


def first_visible_held(frames: Frames) -> int:
    """`first_visible_frame` among frames decoded already (within BLANK_SEARCH)."""
    return _first_visible_of(frames.frame(index)
                             for index in range(min(BLANK_SEARCH, frames.count)))


def _first_visible_of(frames: Iterable[pyvips.Image]) -> int:
    for index, frame in enumerate(frames):
        if not blank(frame):
            return index
    return 0


def blank(frame: pyvips.Image) -> bool:
    """Wholly transparent, or every band (alpha too) within UNIFORM_RANGE of one value."""
    stats = frame.stats()  # row 0: all bands; row b: band b-1; column 0 min, 1 max
    if frame.hasalpha() and stats(1, frame.bands)[0] == 0:
        return True
    return all(stats(1, band)[0] - stats(0, band)[0] <= UNIFORM_RANGE
               for band in range(1, frame.bands + 1))


def _vips_pages(strip: pyvips.Image, facts: AnimationFacts, count: int) -> list[pyvips.Image]:
    """The frames of a lazily decoded strip; read in order, they decode in order."""
    strip = to_srgb8(_colour_managed(strip))
    return [strip.crop(0, index * facts.height, facts.width, facts.height)
            for index in range(count)]


def _colour_managed(strip: pyvips.Image) -> pyvips.Image:
    if strip.get_typeof("icc-profile-data"):
        return strip.icc_transform("srgb", input_profile="srgb", embedded=True)
    return strip


def _pillow_pages(path: Path, media_type: MediaType, facts: AnimationFacts, count: int,
                  size: tuple[int, int]) -> tuple[list[pyvips.Image], list[int]]:
    """Each frame reduced to `size` as it comes: one full-size frame in memory at a time."""
    pages: list[pyvips.Image] = []
    delays: list[int] = []
    for frame, delay in _pillow_timed(path, media_type, facts, count):
        pages.append(_fitted(frame, size).copy_memory())  # Pillow reuses its frame buffer
        delays.append(delay)
    return pages, delays


def _fitted(frame: pyvips.Image, size: tuple[int, int]) -> pyvips.Image:
    if (frame.width, frame.height) == size:
        return frame
    return frame.thumbnail_image(size[0], height=size[1], size="force")


def _pillow_frames(path: Path, media_type: MediaType, facts: AnimationFacts, count: int
                   ) -> Iterator[pyvips.Image]:
    for frame, _ in _pillow_timed(path, media_type, facts, count):
        yield frame


def _pillow_timed(path: Path, media_type: MediaType, facts: AnimationFacts, count: int
                  ) -> Iterator[tuple[pyvips.Image, int]]:
    """Frame after frame, composited by Pillow, as libvips images with their delays."""
    from media_worker.engines.images.pillow import srgb_pixels  # images/ imports this module

    with open_with_pillow(path, media_type) as opened:
        for index in range(facts.first, facts.first + count):
            opened.seek(index)
            pixels, _ = srgb_pixels(opened.convert("RGBA"))
            delay = played_delay(opened.info.get("duration"))  # AVIF: known once loaded
            yield _from_pillow(pixels), delay


def _from_pillow(pixels: Image.Image) -> pyvips.Image:
    image = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height,
                                         len(pixels.getbands()), "uchar")
    return image.copy(interpretation="srgb")


def _without_opaque_alpha(strip: pyvips.Image) -> pyvips.Image:
    """Alpha dropped when no frame has a transparent pixel (GIF and WebP decode with alpha
    whatever the file holds): resizing and encoding three bands costs less."""
    if strip.hasalpha() and strip[strip.bands - 1].min() == 255:
        return strip[: strip.bands - 1]  # read from the held frames as it is used
    return strip
