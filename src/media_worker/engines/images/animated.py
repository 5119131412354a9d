"""An animated original: its still sizes from the first frame worth showing, its animated
sizes from one decode of the frames the job keeps.

A size without `animated` is a still of the first non-blank frame (many GIFs open on a
transparent or flat frame), rendered by the still path at that frame. Animated sizes share
one decode: the kept frames (`kept_frames`: one cut per job) held once, then each size
framed as its still would be (`fit` inside the box; `cover`/`smart` the same window on every
frame, smart's interest measured once on the first visible frame) and encoded as animated
WebP, or GIF where the size asks. `frames` and `durationMs` of each say what was kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyvips

from media_worker.engines.animated.encode import (
    MIME_TYPES,
    animation_format,
    encode_animation,
)
from media_worker.engines.animated.frames import (
    RGBA,
    Frames,
    decode_frames,
    first_visible_frame,
    first_visible_held,
    held_size,
)
from media_worker.engines.animated.probe import AnimationFacts
from media_worker.engines.animated.resize import kept_frames, resized_frames, window_of
from media_worker.engines.color.detect_still import detect_still
from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.encode import interest_of, needed_scale, scale_for
from media_worker.engines.framing import Interest, crop_window, output_size
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult
from media_worker.engines.probe import check_pixels, image_metadata, read_image_header
from media_worker.engines.render_clock import encoding
from media_worker.engines.sniff import MediaType
from media_worker.renditions import Focus
from media_worker.types import Crop, FitMode, ThumbnailSize

# The still path, at a frame: (sizes, frame index as its decoder counts) -> RenderResult.
StillRenderer = Callable[[list[ThumbnailSize], int], RenderResult]


def render_animation(path: Path, media_type: MediaType, facts: AnimationFacts,
                     sizes: list[ThumbnailSize], output: OutputSpec, *, max_pixels: int,
                     budget: DecodeBudget | None, focus: Focus | None,
                     still: StillRenderer) -> RenderResult:
    """Every size of an animated original, in the order of `sizes`."""
    check_pixels(facts.width, facts.height, max_pixels)
    stills = [size for size in sizes if not size.animated]
    moving = [size for size in sizes if size.animated]
    rendered, first = [], None
    if moving:  # decoded first: its frames also tell which one the stills show
        rendered, first = _animated_or_second_chance(path, media_type, facts, moving, output,
                                                     budget=budget, focus=focus)
    if stills:
        first = _first_visible(path, media_type, facts) if first is None else first
        result = still(stills, facts.first + first)
        metadata, rendered = result.metadata, result.thumbnails + rendered
    else:
        metadata = _metadata(path, media_type, output)
    by_name = {thumb.size.name: thumb for thumb in rendered}
    animation = {"frames": facts.frames, "loop": facts.loop}
    return RenderResult([by_name[size.name] for size in sizes],
                        metadata | {"animation": animation})


def _first_visible(path: Path, media_type: MediaType, facts: AnimationFacts) -> int:
    """Frame 0 where the search cannot decode the opening frames: the still path then
    decodes (or explains) the file as it would any other."""
    try:
        return first_visible_frame(path, media_type, facts)
    except Exception:  # fuzzed files make decoders raise anything
        return 0


def _animated_or_second_chance(path: Path, media_type: MediaType, facts: AnimationFacts,
                               sizes: list[ThumbnailSize], output: OutputSpec, *,
                               budget: DecodeBudget | None, focus: Focus | None
                               ) -> tuple[list[RenderedThumbnail], int]:
    """A damaged GIF libvips gives up on may still decode with Pillow, as for stills."""
    try:
        return _animated(path, media_type, facts, sizes, output, budget=budget, focus=focus)
    except pyvips.Error:
        if media_type.format != "gif":
            raise
    return _animated(path, media_type, replace(facts, decoder="pillow"), sizes, output,
                     budget=budget, focus=focus)


def _animated(path: Path, media_type: MediaType, facts: AnimationFacts,
              sizes: list[ThumbnailSize], output: OutputSpec, *, budget: DecodeBudget | None,
              focus: Focus | None) -> tuple[list[RenderedThumbnail], int]:
    """The animated sizes, and the first visible frame among those decoded."""
    canvas = (facts.width, facts.height)
    crops = {size.name: None if size.mode is FitMode.FIT else
             crop_window(*canvas, size, centre=focus) for size in sizes}
    count = kept_frames(facts.frames, [_output_of(size, canvas, crops[size.name])
                                       for size in sizes],
                        max_frames=output.max_animation_frames,
                        max_pixels=output.max_animation_pixels)
    scale = max(needed_scale(*canvas, size) for size in sizes)
    held = held_size(facts, count, scale)
    with admitted(budget, _megabytes(facts, held, count)):
        frames = decode_frames(path, media_type, facts, count=count, size=held)
        first = first_visible_held(frames)
        if any(size.mode is FitMode.SMART for size in sizes):
            interest = interest_of(frames.frame(first))
            crops |= {size.name: _smart_crop(canvas, size, interest) for size in sizes
                      if size.mode is FitMode.SMART}
        return [_encoded(frames, size, crops[size.name], canvas, output)
                for size in sizes], first


def _encoded(frames: Frames, size: ThumbnailSize, crop: Crop | None,
             canvas: tuple[int, int], output: OutputSpec) -> RenderedThumbnail:
    target = _output_of(size, canvas, crop)
    with encoding(size.name):
        strip = resized_frames(frames, window_of(crop, frames, canvas), target)
        data = encode_animation(strip, page_height=target[1], delays=frames.delays,
                                loop=frames.loop, size=size, output=output)
    fmt = animation_format(size)
    return RenderedThumbnail(size=size, width=target[0], height=target[1], format=fmt,
                             mime_type=MIME_TYPES[fmt], data=data, kind="animation",
                             crop=crop, frames=frames.count,
                             duration_ms=sum(frames.delays))


def _output_of(size: ThumbnailSize, canvas: tuple[int, int],
               crop: Crop | None) -> tuple[int, int]:
    """A frame's size in the output: fitted in the box, or the box of a crop."""
    if crop is not None:
        return output_size(crop, size)
    scale = scale_for(*canvas, size)
    return max(1, round(canvas[0] * scale)), max(1, round(canvas[1] * scale))


def _smart_crop(canvas: tuple[int, int], size: ThumbnailSize, interest: Interest) -> Crop:
    return crop_window(*canvas, size, centre=interest.center, faces=interest.faces)


def _megabytes(facts: AnimationFacts, held: tuple[int, int], count: int) -> int:
    """The frames held, a size's output frames beside them, and the decoder's canvas and
    previous frame (for disposal)."""
    frames = held[0] * held[1] * count * RGBA
    canvases = 2 * facts.width * facts.height * RGBA
    return math.ceil((2 * frames + canvases) / MEGABYTE)


def _metadata(path: Path, media_type: MediaType, output: OutputSpec) -> dict[str, Any]:
    """What the still path would have said, for a job of animated sizes only."""
    header = read_image_header(path, media_type)
    return image_metadata(media_type, header, gps=output.gps) | {
        "hdr": detect_still(path, media_type).to_metadata()}
