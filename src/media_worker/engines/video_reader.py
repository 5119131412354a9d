"""Reading a video stream's frames within budgets: packet by packet, so one broken packet costs
a frame rather than the video, and never more packets or frames than the caller allows.

Shared by the representative frame, the preview clip and the storyboard of one job, all on the
container the job opened once. Reading goes on where the last reading stopped until the next
seek: the preview clip starts at the representative frame without decoding its way there a
second time. `decoded` counts every frame the decoder handed back, which is what a job's
decoding costs: a storyboard of a long video stays at about one frame per tile.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import av

from media_worker.engines.decode_errors import ffmpeg_message

MAX_PACKETS = 600
MAX_BAD_PACKETS = 30


@dataclass
class FrameReader:
    """Decodes frames of `stream`, remembering FFmpeg's last complaint for the error message
    and how many frames were decoded."""

    container: Any
    stream: Any
    last_error: str = field(default="", init=False)
    decoded: int = field(default=0, init=False)
    _bad: int = field(default=0, init=False)
    _pending: deque[Any] = field(default_factory=deque, init=False)  # decoded, not yet read
    _last: Any = field(default=None, init=False)  # the frame `frames` gave last

    @property
    def start(self) -> float:
        """Timestamp of the stream's first frame (MPEG-TS and edited MP4s do not start at 0)."""
        if self.stream.start_time is None or self.stream.time_base is None:
            return 0.0
        return float(self.stream.start_time * self.stream.time_base)

    def time_of(self, item: Any) -> float | None:
        """Seconds since the stream's start of a frame or packet (its pts, else its dts).
        Computed from the stream's time base: frames drained at the end of a stream carry
        none of their own."""
        stamp = item.pts if item.pts is not None else getattr(item, "dts", None)
        if stamp is None or self.stream.time_base is None:
            return None
        return float(stamp * self.stream.time_base) - self.start

    def seek(self, seconds: float) -> None:
        """Go to the keyframe at or before `seconds` after the start (0: the beginning)."""
        self._pending.clear()
        self._last = None
        if self.stream.time_base is None:
            self.container.seek(0)
            return
        offset = int((self.start + max(0.0, seconds)) / self.stream.time_base)
        try:
            self.container.seek(offset, stream=self.stream, backward=True)
        except av.FFmpegError:
            self.container.seek(0)

    def packets(self, max_packets: int = MAX_PACKETS) -> Iterator[Any]:
        """Demuxed packets from the current position, at most `max_packets`; the last one of
        the stream is FFmpeg's empty packet, whose decoding drains the decoder."""
        try:
            for count, packet in enumerate(self.container.demux(self.stream)):
                if count >= max_packets:
                    return
                yield packet
        except av.FFmpegError as exc:  # the demuxer itself gave up (truncated file)
            self.last_error = ffmpeg_message(exc)

    def decode(self, packet: Any) -> list[Any]:
        """The frames one packet gives (none for a broken one, which is remembered)."""
        try:
            frames = list(packet.decode())
        except av.FFmpegError as exc:
            self.last_error = ffmpeg_message(exc)
            self._bad += 1
            return []
        self.decoded += len(frames)
        return frames

    def drain(self) -> list[Any]:
        """The frames the decoder still holds (frame threads, reordering): after a lone
        keyframe. The next seek makes the decoder usable again."""
        self._last = None
        try:
            frames = list(self.stream.codec_context.decode(None))
        except av.FFmpegError as exc:
            self.last_error = ffmpeg_message(exc)
            return []
        self.decoded += len(frames)
        return frames

    def next_keyframe(self, max_packets: int = MAX_PACKETS) -> Any:
        """The next keyframe packet, undecoded (what a backward seek lands on; packets before
        it, from a demuxer that seeks inexactly, are dropped), or None."""
        for packet in self.packets(max_packets):
            if packet.is_keyframe:
                return packet
        return None

    def follows(self, frame: Any) -> bool:
        """Whether the next `frames` goes on right after `frame` (no seek since it was read)."""
        return frame is not None and frame is self._last

    def frames(self, max_packets: int = MAX_PACKETS, *, first: Any = None) -> Iterator[Any]:
        """Decoded frames from the current position (after the last frame read, if no seek
        came since; from the packet `first` when given), within the packet budget; stops
        after MAX_BAD_PACKETS broken packets."""
        self._bad = 0
        yield from self._taken()
        packets = self.packets(max_packets)
        for packet in packets if first is None else chain([first], packets):
            self._pending.extend(self.decode(packet))
            yield from self._taken()
            if self._bad >= MAX_BAD_PACKETS:
                return

    def _taken(self) -> Iterator[Any]:
        while self._pending:
            self._last = self._pending.popleft()
            yield self._last
