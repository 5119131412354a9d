"""The quality bar of issue 13 for HDR video: each HDR corpus video's thumbnail (TONEMAP=hable)
against the same frame tone-mapped by Debian's `ffmpeg` with `zscale` + `tonemap=hable`, code
independent of the engine's (zimg linearises, FFmpeg's filter maps). Mean ΔE2000 ≤ 6, and the
luminance contrast (standard deviation of L*) and mean chroma within 20% of the reference.

The reference is encoded with the sRGB curve (zscale `t=iec61966-2-1`), as the thumbnails are,
rather than BT.709's camera curve, which would brighten its shadows against ours. Known
difference: zimg applies HLG's system gamma (1.2) to each channel, BT.2100 (and the engine) to
the luminance, so the reference's saturated colours of HLG video are more saturated than ours
(measured: 13–16% more mean chroma on the two HLG clips, ΔE under 2).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.detect_video import detect_video_colour
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.engines.probe import stream_duration
from media_worker.engines.video import _representative_frame
from media_worker.engines.video_reader import FrameReader
from media_worker.types import ThumbnailSize

with warnings.catch_warnings():  # colour-science warns that SciPy and Matplotlib are absent
    warnings.simplefilter("ignore")
    import colour

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")
HDR_VIDEOS = ["videos/hdr10-av1.mp4", "videos/dolbyVision-hdr.MOV", "videos/hlg10-color-test.mp4"]
MAX_MEAN_DELTA_E = 6.0
MAX_RELATIVE_GAP = 0.20


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        pytest.skip("ffmpeg not installed (Debian package ffmpeg; scripts/ensure-tools.sh)")
    filters = subprocess.run([found, "-hide_banner", "-filters"], capture_output=True,
                             text=True, check=False).stdout
    if " zscale " not in filters or " tonemap " not in filters:
        pytest.skip("this ffmpeg has no zscale/tonemap filter (Debian's ffmpeg has both)")
    return found


def engine_choice(path: Path) -> tuple[float, float]:
    """The engine's frame (seconds from the stream's start) and the peak it assumes (nits)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = FrameReader(container, stream)
        frame = _representative_frame(reader, stream_duration(container, stream))
        signal = detect_video_colour(container, stream, frame, path).signal
        assert signal.is_hdr, path
        return frame.time - reader.start, signal.source_peak()


def reference(ffmpeg: str, path: Path, seconds: float, peak_nits: float, *,
              size: tuple[int, int]) -> np.ndarray:
    """FFmpeg's frame at `seconds`, upright (ffmpeg applies the display matrix itself):
    linear light (1.0 = 100 nits), BT.709 primaries, hable on the brightest channel, sRGB."""
    width, height = size
    chain = ",".join([
        "zscale=t=linear:npl=100", "format=gbrpf32le", "zscale=p=bt709",
        f"tonemap=tonemap=hable:desat=0:peak={peak_nits / 100:g}",
        "zscale=t=iec61966-2-1:m=bt709:r=pc", "format=rgb24",
        f"scale={width}:{height}:flags=bicubic"])
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-ss", f"{seconds:.6f}", "-i", str(path), "-frames:v", "1",
         "-vf", chain, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=120).stdout
    assert len(out) == width * height * 3, "ffmpeg's frame has another size (rotation?)"
    return np.frombuffer(out, np.uint8).reshape(height, width, 3)


def lab(rgb: np.ndarray) -> np.ndarray:
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb.astype(np.float64) / 255.0))


def against(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float, float]:
    """Mean ΔE2000, and the ratios of L* standard deviation and of mean chroma."""
    ours_lab, theirs_lab = lab(ours), lab(theirs)
    delta_e = float(colour.delta_E(ours_lab, theirs_lab, method="CIE 2000").mean())
    contrast = ours_lab[..., 0].std() / theirs_lab[..., 0].std()
    chroma = (np.hypot(ours_lab[..., 1], ours_lab[..., 2]).mean()
              / np.hypot(theirs_lab[..., 1], theirs_lab[..., 2]).mean())
    return delta_e, float(contrast), float(chroma)


def passes(delta_e: float, contrast: float, chroma: float) -> bool:
    return (delta_e <= MAX_MEAN_DELTA_E and abs(contrast - 1) <= MAX_RELATIVE_GAP
            and abs(chroma - 1) <= MAX_RELATIVE_GAP)


@pytest.mark.parametrize("name", HDR_VIDEOS)
def test_hdr_video_matches_ffmpeg_tonemap(ffmpeg: str, corpus: Path, name: str) -> None:
    path = corpus / name
    engine = LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)
    output = OutputSpec(ThumbnailFormat.PNG, 80, tonemap="hable")
    largest = engine.render(SourceMedia(path, "media", path.name), SIZES, output).thumbnails[-1]
    ours = pyvips.Image.new_from_buffer(largest.data, "").numpy()
    seconds, peak = engine_choice(path)
    theirs = reference(ffmpeg, path, seconds, peak, size=(largest.width, largest.height))
    delta_e, contrast, chroma = against(ours, theirs)
    print(f"{name}: mean ΔE2000 {delta_e:.2f}, L* std ratio {contrast:.3f}, "
          f"chroma ratio {chroma:.3f}")
    assert passes(delta_e, contrast, chroma)


def test_the_bar_fails_the_untone_mapped_frame(ffmpeg: str, corpus: Path) -> None:
    """The thumbnail as it was before tone mapping (PQ code values shown as sRGB: grey and
    flat) does not pass, so the bar can tell."""
    path = corpus / "videos/hdr10-av1.mp4"
    seconds, peak = engine_choice(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = FrameReader(container, stream)
        frame = _representative_frame(reader, stream_duration(container, stream))
        untone_mapped = frame.to_ndarray(format="rgb24", width=720, height=1280,
                                         interpolation="BICUBIC")
    theirs = reference(ffmpeg, path, seconds, peak, size=(720, 1280))
    assert not passes(*against(untone_mapped, theirs))
