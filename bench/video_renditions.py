"""Bench 17 (`--only clips`): preview clips and storyboards against the `ffmpeg` command line,
side by side in one run, on the corpus videos and on a 10-minute 1080p H.264 file.

- **17a/17b preview clip** (`VIDEO_PREVIEW=480x480:3:12:webp`, then `:mp4`): the worker's job
  (`LocalEngine.render` with one 16x16 still and the clip: open, probe, representative frame,
  the clip, the BlurHash) against `ffmpeg -ss T -i FILE -t 3 -vf fps=12,scale=480:480:
  force_original_aspect_ratio=decrease` encoding with the same encoder and settings
  (libwebp_anim quality 80 method 2; libx264 veryfast CRF 23, faststart), T being the
  engine's own seek point. "clip alone" is the job minus the same job without the clip.
- **17c storyboard** (`VIDEO_STORYBOARD=160x90:auto`): the worker's job with the storyboard
  against `ffmpeg -skip_frame nokey -i FILE -vf fps=1/I,scale=160:90:force_original_aspect_
  ratio=decrease,tile=10x10` writing JPEG sheets. ffmpeg's `nokey` repeats the last keyframe
  for every tile it has none for; the worker decodes on to the tile's time when the keyframe
  is more than half an interval away (most corpus files have one keyframe), so on those files
  it does more work for a storyboard that is not the same one. 17c' holds it against the
  command without `-skip_frame` (every frame decoded: the tiles the worker makes), except on
  the 10-minute file: it has a keyframe every 2 s, so there the keyframes are the tiles and
  decoding its 18,000 frames would only make the run half a minute longer per repetition.
- **17d WebP encoders**: the same 24 frames (480x270) encoded by PyAV's libwebp_anim, as the
  worker does, and by libvips' webpsave of a tall image (`page-height`, `delay`), CPU only.

Wall seconds (judged, as bench 4 judges video) and CPU seconds (this process's threads; the
command's process, start-up included), medians over the repetitions, interleaved so load from
other processes weighs on every variant alike. Target: ≤ 1.2× the command's wall time.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pyvips

from bench.common import (
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    cpu_of,
    geomean,
    interleaved_timings,
    local_engine,
    median,
    run_quietly,
    seconds,
    timed,
    timed_command,
)
from bench.video import seek_point
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.engines.probe import stream_duration
from media_worker.renditions import PreviewSpec, StoryboardSpec
from media_worker.types import ThumbnailSize

TARGET = Target("<=", 1.2)
PREVIEW = PreviewSpec(480, 480, 3.0, 12, "webp")  # the example, 480x480:3:12:webp
STORYBOARD = StoryboardSpec(160, 90)  # 160x90:auto
STILL = [ThumbnailSize(name="t", width=16, height=16)]
QUALITY = 80
# what the worker makes → the command it is held against
KINDS = {"webp": "webp", "mp4": "mp4", "storyboard": "storyboard",
         "storyboard, same tiles": "storyboard every frame"}
LABELS = {"webp": "17a preview clip, WebP (wall)", "mp4": "17b preview clip, MP4 (wall)",
          "storyboard": "17c storyboard vs nokey (wall)",
          "storyboard, same tiles": "17c' storyboard vs every frame (wall)"}
LONG_SECONDS, SEGMENT_SECONDS = 600, 10

Measure = Callable[[], tuple[float, float]]  # (wall, CPU) seconds of one run


def clips_bench(inputs: Inputs, reps: int, report: Report) -> None:
    if shutil.which("ffmpeg") is None:
        raise Skip("`ffmpeg` not installed (apt-get install ffmpeg)")
    engine = local_engine()
    long_video = _ten_minutes(inputs.workdir)
    detail = ["| video | kind | ours wall | ours CPU | clip alone (wall) | ffmpeg wall | "
              "ffmpeg CPU | ratio (wall) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    ratios: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for path in [*inputs.videos, long_video]:
        # Each variant ran once already, as _variants tried it.
        times = interleaved_timings(_variants(engine, path, inputs.workdir, report), reps,
                                    warm_up=False)
        for kind, anchor in KINDS.items():
            job, command = kind.split(",")[0], f"ffmpeg {anchor}"
            if job not in times or command not in times:
                continue
            ours, theirs = median(times[job].wall), median(times[command].wall)
            alone = ours - median(times["still only"].wall)
            detail.append(f"| {path.name} | {kind} | {seconds(ours)} | "
                          f"{seconds(median(times[job].cpu))} | {seconds(alone)} | "
                          f"{seconds(theirs)} | {seconds(median(times[command].cpu))} | "
                          f"{ours / theirs:.2f}× |")
            if path is long_video:
                report.add(Row(LABELS[kind], "10-minute 1080p H.264", seconds(ours),
                               seconds(theirs), ours / theirs, TARGET))
            else:
                ratios[kind].append(ours / theirs)
    for kind in KINDS:
        if ratios[kind]:
            report.add(Row(LABELS[kind], f"corpus videos (n={len(ratios[kind])}, geomean)",
                           "job", "ffmpeg", geomean(ratios[kind]), TARGET))
    report.section(f"17 clips, per file ({reps} repetitions, medians)", "\n".join(detail))
    _webp_encoders(inputs, reps, report)


def _variants(engine: LocalEngine, path: Path, workdir: Path, report: Report
              ) -> dict[str, Measure]:
    """The worker's jobs and the commands that work on this file, each run once (a warm-up;
    one that fails is noted and left out: Debian's ffmpeg 5.1 cannot write a one-frame
    animated WebP)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        duration = stream_duration(container, container.streams.video[0])
    start = seek_point(path)
    interval = STORYBOARD.interval_for(duration)
    source = SourceMedia(path, "bench", path.name)
    outputs = {"still only": OutputSpec(quality=QUALITY),
               "webp": OutputSpec(quality=QUALITY, preview=PREVIEW),
               "mp4": OutputSpec(quality=QUALITY, preview=replace(PREVIEW, format="mp4")),
               "storyboard": OutputSpec(quality=QUALITY, storyboard=STORYBOARD)}
    variants: dict[str, Measure] = {
        name: (lambda o=output: timed(lambda: engine.render(source, STILL, o)))
        for name, output in outputs.items()}
    for kind, command in _commands(path, workdir, start=start, interval=interval).items():
        if kind == "storyboard every frame" and duration > LONG_SECONDS / 2:
            continue  # 18,000 frames of 1080p, half a minute a run, for tiles nokey gives too
        variants[f"ffmpeg {kind}"] = lambda c=command: timed_command(c)
    working = {}
    for name, measure in variants.items():
        try:
            measure()
        except Exception as exc:  # a file one side cannot do is reported, not fatal
            report.note(f"17 clips: {path.name}, {name} left out: "
                        f"{str(exc).splitlines()[0][:160]}")
        else:
            working[name] = measure
    return working


def _commands(path: Path, workdir: Path, *, start: float, interval: float
              ) -> dict[str, list[str]]:
    """The `ffmpeg` commands that make what the worker makes."""
    head = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    box = "scale=480:480:force_original_aspect_ratio=decrease"
    clip = [*head, "-ss", f"{start:.3f}", "-i", str(path), "-t", "3", "-an"]
    board = ["-i", str(path), "-an", "-vf", f"fps=1/{interval:.6f},scale=160:90:"
             "force_original_aspect_ratio=decrease,tile=10x10", "-q:v", "4",
             str(workdir / "storyboard-%d.jpg")]
    return {
        "webp": [*clip, "-vf", f"fps=12,{box}", "-c:v", "libwebp_anim", "-pix_fmt", "yuv420p",
                 "-quality", str(QUALITY), "-compression_level", "2", "-loop", "0",
                 str(workdir / "clip.webp")],
        "mp4": [*clip, "-vf", f"fps=12,{box}:force_divisible_by=2", "-c:v", "libx264",
                "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", str(workdir / "clip.mp4")],
        "storyboard": [*head, "-skip_frame", "nokey", *board],
        "storyboard every frame": [*head, *board],
    }


def _ten_minutes(workdir: Path) -> Path:
    """10 minutes of 1080p30 H.264 at about 1 Mb/s, a keyframe every 2 s: a 10 s test
    pattern encoded once (ultrafast) and looped by stream copy, which costs seconds."""
    segment, whole = workdir / "segment-1080p.mp4", workdir / "ten-minutes-1080p.mp4"
    if not whole.exists():
        run_quietly(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                     "testsrc2=size=1920x1080:rate=30", "-t", str(SEGMENT_SECONDS),
                     "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", "-g", "60",
                     "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(segment)])
        run_quietly(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop",
                     str(LONG_SECONDS // SEGMENT_SECONDS - 1), "-i", str(segment), "-c",
                     "copy", str(whole)])
        segment.unlink()
    return whole


def _webp_encoders(inputs: Inputs, reps: int, report: Report) -> None:
    """17d: the worker's WebP encoder (libwebp_anim via PyAV) against libvips' webpsave of
    the same frames, at the same quality and method."""
    frames = _frames(inputs.corpus_file("videos/video-1080p-60fps-2s.mp4"))
    pictures = [pyvips.Image.new_from_memory(frame.to_ndarray().tobytes(), frame.width,
                                             frame.height, 3, "uchar") for frame in frames]
    encoders = {"libwebp_anim (PyAV)": lambda: _libwebp_anim(frames),
                "libvips webpsave": lambda: _webpsave(pictures)}
    times: dict[str, list[float]] = {name: [] for name in encoders}
    sizes = {name: len(encode()) for name, encode in encoders.items()}
    for _ in range(reps):
        for name, encode in encoders.items():
            times[name].append(cpu_of(encode))
    ours, theirs = median(times["libwebp_anim (PyAV)"]), median(times["libvips webpsave"])
    report.add(Row("17d WebP clip encoder (CPU)", f"{len(frames)} frames 480x270, Q80 m2",
                   f"{seconds(ours)} libwebp_anim, {sizes['libwebp_anim (PyAV)']} B",
                   f"{seconds(theirs)} webpsave, {sizes['libvips webpsave']} B",
                   ours / theirs))


def _frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        decoded = [frame.reformat(width=480, height=270, format="rgb24")
                   for index, frame in enumerate(container.decode(video=0)) if index % 5 == 0]
    return decoded[:36]


def _libwebp_anim(frames: list[av.VideoFrame]) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="webp", options={"loop": "0"}) as container:
        stream = container.add_stream("libwebp_anim", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = 480, 270, "yuv420p"
        stream.options = {"quality": str(QUALITY), "compression_level": "2"}
        for index, frame in enumerate(frames):
            converted = frame.reformat(format="yuv420p", dst_colorspace="ITU601",
                                       dst_color_range="MPEG")
            converted.pts = index
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return out.getvalue()


def _webpsave(pictures: list[pyvips.Image]) -> bytes:
    strip = pyvips.Image.arrayjoin(pictures, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", pictures[0].height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [83] * len(pictures))
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    return strip.webpsave_buffer(Q=QUALITY, effort=2, keep=0)
