"""Large videos for the reading-in-place tests (issue 15), made with Debian's ffmpeg once per
test run and shared by the test processes.

Encoding hundreds of MB would take minutes, so each file is one short segment encoded once
(H.264 640x360 at 3 Mb/s, a keyframe every 2 s; VP8 320x180 for the WebM) looped with stream
copy (`-stream_loop N -c copy`): what making them costs is writing about 0.9 GB, a few seconds.

- `moov-at-end.mp4`: 335 MB, 14 min 20 s, the index after the media data (ffmpeg's default);
- `faststart.mp4`: the same with `-movflags +faststart` (the index first);
- `fragmented.mp4`: the same 335 MB, a fragment per keyframe. FFmpeg opens a fragmented MP4
  by reading every fragment's header, so what it fetches grows with the number of fragments
  and with what the reader fetches at each jump (8 KiB: 4 MB here; at 64 KiB it was 29 MB,
  over the issue's 2% or 16 MB; docs/performance.md);
- `long.webm`: 90 MB, 30 minutes, Cues at the end;
- `segment.mp4`: the 7.8 MB, 20 s segment the MP4s loop (small enough for moto, which loads a
  whole object for every ranged GET).

They live in the session's temporary directory (pytest's, never the repository): under
pytest-xdist in the directory above the processes' own, made by whichever process asks first
while the others wait on a lock, and removed when the last process that used them ends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SEGMENT_SECONDS = 20
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-b:v", "3M", "-maxrate", "3M",
        "-bufsize", "6M", "-pix_fmt", "yuv420p"]
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "20", "-b:v", "400k"]
# How many times each file loops its segment, and how it is muxed.
MP4_FILES = {
    "moov-at-end.mp4": (43, []),  # ffmpeg's default: the index after the media data
    "faststart.mp4": (43, ["-movflags", "+faststart"]),
    "fragmented.mp4": (43, ["-movflags", "+frag_keyframe+empty_moov+default_base_moof"]),
}
WEBM_LOOPS = 90
NAMES = ("segment.mp4", *MP4_FILES, "long.webm")
FOLDER = "big-videos"


@dataclass(frozen=True)
class BigVideos:
    """The files by name (the module's docstring) and how long this process waited for them
    (making them, or another process making them)."""

    files: dict[str, Path]
    seconds: float = 0.0

    def __getitem__(self, name: str) -> Path:
        return self.files[name]


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def make_big_videos(directory: Path, *, loops: int | None = None,
                    webm_loops: int = WEBM_LOOPS) -> BigVideos:
    """Every file of the module's docstring, in `directory`; `loops` segments in each MP4
    instead (smaller files for a module of its own) when given."""
    directory.mkdir(parents=True, exist_ok=True)
    segment = directory / "segment.mp4"
    _ffmpeg(*_testsrc("640x360", 25), *H264, segment)
    files = {"segment.mp4": segment}
    for name, (default_loops, mux) in MP4_FILES.items():
        files[name] = loop_copy(segment, directory / name, loops or default_loops, mux)
    webm_segment = directory / "segment.webm"
    _ffmpeg(*_testsrc("320x180", 10), *VP8, webm_segment)
    files["long.webm"] = loop_copy(webm_segment, directory / "long.webm", webm_loops)
    webm_segment.unlink()
    return BigVideos(files)


def loop_copy(segment: Path, destination: Path, loops: int, mux: list[str] | None = None
              ) -> Path:
    """`segment` played `loops` times, stream-copied into `destination`."""
    _ffmpeg("-stream_loop", str(loops - 1), "-i", str(segment), "-c", "copy", *(mux or []),
            destination)
    return destination


@contextmanager
def shared_big_videos(session_temp: Path) -> Iterator[BigVideos]:
    """The files, made once per run: `session_temp` is pytest's temporary directory of this
    process (`getbasetemp()`); the test processes of one pytest-xdist run share its parent."""
    root = session_temp.parent if os.environ.get("PYTEST_XDIST_WORKER") else session_temp
    folder = root / FOLDER
    start = time.monotonic()
    with _locked(root / f"{FOLDER}.lock"):
        if not (folder / "complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            make_big_videos(folder)
            (folder / "complete").touch()
        _count_user(folder, +1)
    videos = BigVideos({name: folder / name for name in NAMES}, time.monotonic() - start)
    try:
        yield videos
    finally:
        with _locked(root / f"{FOLDER}.lock"):
            if _count_user(folder, -1) == 0:  # the last process that used them
                shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _count_user(folder: Path, change: int) -> int:
    """The processes using the files, after `change` (called under the lock)."""
    counter = folder / "users"
    users = int(counter.read_text()) if counter.exists() else 0
    users += change
    counter.write_text(str(users))
    return users


def _testsrc(size: str, rate: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-t",
            str(SEGMENT_SECONDS)]


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-y", "-nostdin", "-loglevel", "error", *map(str, args)],
                   check=True, timeout=300)
