"""Large videos for the reading-in-place tests and bench, made with Debian's ffmpeg.

Encoding tens of MB is slow, so each file is one short segment (H.264 640x360 at 3 Mb/s, a
keyframe every 2 s; VP8 320x180 for WebM) looped with stream copy: a few seconds for every
file. They are made once per session in a temporary directory, never kept in the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SEGMENT_SECONDS = 20
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-b:v", "3M", "-maxrate", "3M",
        "-bufsize", "6M", "-pix_fmt", "yuv420p"]
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "20", "-b:v", "400k"]
# How each MP4 is muxed from the looped segment.
MP4_LAYOUTS = {
    "moov-at-end.mp4": [],  # ffmpeg's default: the index after the media data
    "faststart.mp4": ["-movflags", "+faststart"],
    "fragmented.mp4": ["-movflags", "+frag_keyframe+empty_moov+default_base_moof"],
}


@dataclass(frozen=True)
class BigVideos:
    """The files by name: the three MP4 layouts, `long.webm` and the `segment.mp4` they loop
    (small enough for moto, which loads a whole object for every ranged GET)."""

    files: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.files[name]


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def make_big_videos(directory: Path, *, loops: int = 4, webm_loops: int = 30) -> BigVideos:
    """MP4s of `loops` segments (7.8 MB each) in each layout and a WebM of `webm_loops`
    20-second segments (10 minutes by default)."""
    segment = directory / "segment.mp4"
    _ffmpeg(*_testsrc("640x360", 25), *H264, segment)
    files = {"segment.mp4": segment}
    for name, mux in MP4_LAYOUTS.items():
        files[name] = loop_copy(segment, directory / name, loops, mux)
    webm_segment = directory / "segment.webm"
    _ffmpeg(*_testsrc("320x180", 10), *VP8, webm_segment)
    files["long.webm"] = loop_copy(webm_segment, directory / "long.webm", webm_loops)
    return BigVideos(files)


def loop_copy(segment: Path, destination: Path, loops: int, mux: list[str] | None = None
              ) -> Path:
    """`segment` played `loops` times, stream-copied into `destination`."""
    _ffmpeg("-stream_loop", str(loops - 1), "-i", str(segment), "-c", "copy", *(mux or []),
            destination)
    return destination


def _testsrc(size: str, rate: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-t",
            str(SEGMENT_SECONDS)]


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *map(str, args)], check=True,
                   timeout=300)
