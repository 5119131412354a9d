"""A video's storyboard (VIDEO_STORYBOARD): one tile every INTERVAL seconds on JPEG sprite
sheets of at most 10 x 10 (`storyboard-0.jpg`, …), and the WebVTT file players scrub with.

A tile costs about one decoded frame, however long the video: the reader seeks back to the
keyframe before the tile's time and, when that keyframe is within half an interval of it
(what a scrubbing preview needs), decodes that packet alone and drains the decoder; the
packets after it are never decoded. Only a keyframe too far before the time (sparse
keyframes) is decoded forward, at most FORWARD_FRAMES frames. FFmpeg's `skip_frame` is not
used for this: VP9's decoder ignores it, and skipping by packet works for every codec.

Every tile has one size: the video's upright display size fitted inside the tile box (aspect
kept, never upscaled), not padded to the box, so the cues point at picture only and a player
shows no bars of ours. A tile that cannot be decoded repeats the one before it (the
representative frame for the first), so a broken stretch of the file costs a stale tile
rather than the job.

An original read in place costs a round trip to the store per tile (each is a jump), so the
keyframes the tiles will seek to, found in the container's index, are prefetched side by side
before they are read (ObjectReader.prefetch): a storyboard costs the round trips of a few
tiles rather than of all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyvips

from media_worker.engines.encode import KEEP_NONE
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.storyboard import SheetLayout, webvtt
from media_worker.engines.video_frames import Fitted, FramePainter
from media_worker.engines.video_reader import FrameReader
from media_worker.renditions import StoryboardSpec
from media_worker.types import ThumbnailSize

FORWARD_FRAMES = 60  # frames decoded from a distant keyframe towards a tile's time, at most
ASSUMED_SOURCE_FPS = 30  # for how far FORWARD_FRAMES reach, when the stream does not say
TIME_SLACK = 1e-3  # seconds: container timestamps are rounded to their time base
SHEET_NAME = "storyboard-{sheet}"
# Prefetched beyond a keyframe's own bytes: FFmpeg reads in FFMPEG_READ_BYTES pieces, so the
# last one runs past the packet. An index entry without a size (Matroska's cues point at a
# cluster) is prefetched up to the next entry, at most UNSIZED_KEYFRAME_BYTES.
KEYFRAME_SLACK_BYTES = 16 * 1024
UNSIZED_KEYFRAME_BYTES = 256 * 1024

Prefetch = Callable[[Sequence[tuple[int, int]]], int]  # ObjectReader.prefetch


def render_storyboard(reader: FrameReader, first: Any, painter: FramePainter,
                      spec: StoryboardSpec, *, duration: float, source_fps: float | None,
                      output: OutputSpec, prefetch: Prefetch | None = None
                      ) -> list[RenderedThumbnail]:
    """The sheets, then the WebVTT file (`storyboard.vtt`) whose cues point at their tiles.
    `prefetch`: the reader's, for an original read in place."""
    times = spec.tile_times(duration)
    interval = spec.interval_for(duration)
    fitted = painter.fit(first, (spec.tile_width, spec.tile_height))
    layout = SheetLayout(*fitted.upright, len(times))
    finder = TileFinder(reader, first, tolerance=interval / 2,
                        window=FORWARD_FRAMES / (source_fps or ASSUMED_SOURCE_FPS))
    ahead = Prefetcher(prefetch, keyframe_ranges(reader, times)) if prefetch else None
    tiles = _tiles(finder, times, painter, fitted, ahead)
    box = (spec.tile_width, spec.tile_height)
    sheets = [_sheet(tiles, layout, sheet, box, output.quality)
              for sheet in range(layout.sheets)]
    text = webvtt(layout, times, duration if duration > 0 else times[-1] + interval,
                  sheet_name=SHEET_NAME + ".jpg")
    vtt = RenderedThumbnail(
        size=ThumbnailSize(name="storyboard", width=box[0], height=box[1]),
        width=fitted.upright[0], height=fitted.upright[1], format="vtt",
        mime_type="text/vtt", data=text.encode(), kind="storyboard-vtt")
    return [*sheets, vtt]


def _tiles(finder: TileFinder, times: list[float], painter: FramePainter,
           fitted: Fitted, ahead: Prefetcher | None) -> Iterator[pyvips.Image]:
    """One picture per time, in order (a sheet takes them as it is built)."""
    previous = None
    for index, when in enumerate(times):
        if ahead is not None:
            ahead.before(index)
        frame = finder.frame_at(when)
        if frame is not None:
            previous = painter.paint(frame, fitted)
        elif previous is None:
            previous = painter.paint(finder.first, fitted)
        yield previous


def keyframe_ranges(reader: FrameReader, times: list[float]) -> list[tuple[int, int]]:
    """Per tile time, the (start, length) bytes of the keyframe a seek there lands on, from
    the stream's index (empty when it has none, or no time base)."""
    stream = reader.stream
    entries = stream.index_entries
    count = len(entries)
    if not count or stream.time_base is None:
        return []
    ranges = []
    for when in times:
        found = entries.search_timestamp(int((reader.start + when) / stream.time_base))
        entry = entries[max(0, found)]
        if entry.size > 0:
            length = entry.size
        else:
            following = entries[found + 1].pos if 0 <= found < count - 1 else entry.pos
            length = min(max(0, following - entry.pos) or UNSIZED_KEYFRAME_BYTES,
                         UNSIZED_KEYFRAME_BYTES)
        ranges.append((entry.pos, length + KEYFRAME_SLACK_BYTES))
    return ranges


@dataclass
class Prefetcher:
    """Prefetches the keyframes of the tiles ahead, as many as the reader takes at a time,
    again once the tiles reach the end of what was prefetched."""

    prefetch: Prefetch
    ranges: list[tuple[int, int]]
    _until: int = field(default=0, init=False)  # tiles below this were prefetched

    def before(self, index: int) -> None:
        if index < self._until or index >= len(self.ranges):
            return
        taken = self.prefetch(self.ranges[index:])
        self._until = index + taken if taken else len(self.ranges)  # 0: no room, stop


@dataclass
class TileFinder:
    """Finds each tile's frame, cheapest first: decoding on from the last tile's frame when
    the next time is a short way ahead (sparse keyframes: a seek would land on the same
    keyframe again); the representative frame when it is within `tolerance`; else a seek,
    taking the keyframe alone when it is within `tolerance` of the time."""

    reader: FrameReader
    first: Any  # the representative frame, already decoded
    tolerance: float
    window: float  # seconds FORWARD_FRAMES cover
    _previous: Any = field(default=None, init=False)

    def frame_at(self, target: float) -> Any:
        """The frame for a tile at `target` seconds, or None when nothing decodes there."""
        previous = self.reader.time_of(self._previous) if self._previous is not None else None
        if (previous is not None and self.reader.follows(self._previous)
                and 0 <= target - previous <= self.window):
            return self._decoded_forward(target)
        first_time = self.reader.time_of(self.first)
        if first_time is not None and abs(first_time - target) <= self.tolerance:
            return self.first
        self.reader.seek(target)
        keyframe = self.reader.next_keyframe()
        if keyframe is None:
            return None
        when = self.reader.time_of(keyframe)
        if when is None or when >= target - self.tolerance:
            self._previous = None
            frames = self.reader.decode(keyframe) + self.reader.drain()
            return frames[0] if frames else None
        return self._decoded_forward(target, keyframe)

    def _decoded_forward(self, target: float, keyframe: Any = None) -> Any:
        """The first frame at or after `target`, or the last one FORWARD_FRAMES reached."""
        latest = None
        for count, frame in enumerate(self.reader.frames(first=keyframe), start=1):
            latest = frame
            when = self.reader.time_of(frame)
            if (when is not None and when >= target - TIME_SLACK) or count >= FORWARD_FRAMES:
                break
        self._previous = latest
        return latest


def _sheet(tiles: Iterator[pyvips.Image], layout: SheetLayout, sheet: int,
           box: tuple[int, int], quality: int) -> RenderedThumbnail:
    """One sprite sheet as JPEG: its tiles row by row, the last row's empty cells black."""
    count = min(layout.per_sheet, layout.count - sheet * layout.per_sheet)
    pictures = [next(tiles) for _ in range(count)]
    image = pyvips.Image.arrayjoin(pictures, across=layout.columns)
    data = image.jpegsave_buffer(Q=quality, keep=KEEP_NONE, optimize_coding=True)
    return RenderedThumbnail(
        size=ThumbnailSize(name=SHEET_NAME.format(sheet=sheet), width=box[0], height=box[1]),
        width=image.width, height=image.height, format="jpeg", mime_type="image/jpeg",
        data=data, kind="storyboard")
