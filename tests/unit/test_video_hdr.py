"""HDR video: what metadata.hdr says of every video, where the peak comes from, what Dolby
Vision's configuration record says and renders, and that SDR video keeps its old path."""

from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.detect_video import (
    VideoColour,
    detect_video_colour,
    dolby_vision_config,
    dolby_vision_from_rpu,
    parse_dolby_vision_config,
)
from media_worker.engines.color.signal import Signal
from media_worker.engines.encode import render_from_image
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.probe import display_size, stream_duration
from media_worker.engines.video import _representative_frame
from media_worker.engines.video_hdr import render_hdr_frame
from media_worker.engines.video_reader import FrameReader
from media_worker.errors import UnsupportedMediaError
from media_worker.types import ThumbnailSize
from tests.unit.fresh_interpreter import Step, modules_loaded
from tests.unit.test_fidelity import ssim

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")
PNG = OutputSpec(ThumbnailFormat.PNG, 80)
DV_84 = {"version": "1.0", "profile": 8, "level": 2, "rpuPresent": True, "elPresent": False,
         "blPresent": True, "blSignalCompatibilityId": 4}


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, output: OutputSpec = PNG) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), SIZES, output)


def pixels(data: bytes) -> np.ndarray:
    return pyvips.Image.new_from_buffer(data, "").numpy()


# --- metadata.hdr ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("hdr10-av1.mp4", {"transfer": "pq", "primaries": "bt2020", "dolbyVision": None}),
    ("dolbyVision-hdr.MOV", {"transfer": "hlg", "primaries": "bt2020", "dolbyVision": DV_84}),
    ("hlg10-color-test.mp4", {"transfer": "hlg", "primaries": "bt2020", "dolbyVision": None}),
    # 10-bit VP9 with a BT.2020 matrix but no transfer: SDR, and shown as BT.709
    ("roadtrip-vp92-10bit.webm", {"transfer": "sdr", "primaries": "bt709", "dolbyVision": None}),
    ("sample.mp4", {"transfer": "sdr", "primaries": "bt709", "dolbyVision": None}),
])
def test_every_video_says_what_its_signal_is(engine: LocalEngine, corpus: Path, name: str,
                                             expected: dict) -> None:
    result = render(engine, corpus / "videos" / name)
    assert result.metadata["hdr"] == {**expected, "gainMap": False}


def test_hdr_video_keeps_its_display_size_and_rotation(engine: LocalEngine,
                                                       corpus: Path) -> None:
    """The iPhone clip is coded 1280x720 with a quarter turn: portrait, as the SDR path."""
    result = render(engine, corpus / "videos/dolbyVision-hdr.MOV")
    assert (result.metadata["width"], result.metadata["height"]) == (720, 1280)
    assert result.metadata["rotation"] == 90
    assert [(t.width, t.height) for t in result.thumbnails] == [(84, 150), (720, 1280)]


def test_dolby_vision_configuration_records(corpus: Path) -> None:
    assert dolby_vision_config(corpus / "videos/dolbyVision-hdr.MOV") == DV_84
    # Profile 10.0: AV1 with no compatible base (FFmpeg has no decoder for `dav1` here).
    dav1 = dolby_vision_config(corpus / "videos/malformed/video_dovi_3840x2160_30fps_dav1_10.mp4")
    assert dav1 is not None
    assert (dav1["version"], dav1["profile"], dav1["level"], dav1["blSignalCompatibilityId"]) \
        == ("2.1", 10, 7, 0)
    assert dolby_vision_config(corpus / "videos/hdr10-av1.mp4") is None
    # profile 5, level 6, RPU + BL, compatibility 0 (bits: 0000101 000110 1 0 1, then 0000)
    assert parse_dolby_vision_config(bytes([1, 0, 0x0A, 0x35, 0x00]) + bytes(19)) == {
        "version": "1.0", "profile": 5, "level": 6, "rpuPresent": True, "elPresent": False,
        "blPresent": True, "blSignalCompatibilityId": 0}
    assert parse_dolby_vision_config(b"\x01") is None


def test_dolby_vision_without_a_record_is_told_by_its_rpu(corpus: Path,
                                                           tmp_path: Path) -> None:
    """Matroska keeps the record where PyAV cannot reach it; the frames' RPU still says the
    profile. The iPhone clip remuxed to MKV by Debian's ffmpeg: profile 8, HLG base."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed (Debian package ffmpeg; scripts/ensure-tools.sh)")
    mkv = tmp_path / "dv.mkv"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(corpus / "videos/dolbyVision-hdr.MOV"),
                    "-map", "0:v", "-c", "copy", "-strict", "unofficial", str(mkv)],
                   check=True, timeout=60)
    colour = first_frame_colour(mkv)
    assert colour.signal.transfer == "hlg"
    assert colour.signal.dolby_vision == {"profile": 8, "blSignalCompatibilityId": None,
                                          "rpuPresent": True, "fromRpu": True}
    assert not colour.luma_only


def rpu_metadata(profile: int, full_range: int, el_resampling: int = 0,
                 no_residual: int = 1) -> bytes:
    """An AVDOVIMetadata as FFmpeg lays it out: three offsets, then the RPU header."""
    header = bytearray(24)
    header[4], header[10], header[15], header[16] = profile, full_range, el_resampling, \
        no_residual
    return struct.pack("=3Q", 24, 48, 64) + bytes(header) + bytes(40)


def test_rpu_profiles() -> None:
    assert dolby_vision_from_rpu(rpu_metadata(0, 1)) == {
        "profile": 5, "blSignalCompatibilityId": 0, "rpuPresent": True, "fromRpu": True}
    assert dolby_vision_from_rpu(rpu_metadata(1, 0))["profile"] == 8
    assert dolby_vision_from_rpu(rpu_metadata(1, 0, 1, 0))["profile"] == 7
    assert dolby_vision_from_rpu(rpu_metadata(0, 0)) is None  # not a profile we can name
    assert dolby_vision_from_rpu(b"\x00" * 4) is None
    assert dolby_vision_from_rpu(None) is None


def test_dolby_vision_av1_stays_an_unsupported_codec(engine: LocalEngine,
                                                     corpus: Path) -> None:
    path = corpus / "videos/malformed/video_dovi_3840x2160_30fps_dav1_10.mp4"
    with pytest.raises(UnsupportedMediaError, match="unsupported codec 'dav1'"):
        render(engine, path)


def test_hdr_video_as_ultra_hdr_jpeg(engine: LocalEngine, corpus: Path) -> None:
    """HDR_OUTPUT=gainmap: the rotated iPhone clip's JPEGs carry a gain map turned with them."""
    output = OutputSpec(ThumbnailFormat.JPEG, 85, hdr_output="gainmap")
    result = render(engine, corpus / "videos/dolbyVision-hdr.MOV", output)
    for thumbnail in result.thumbnails:
        image = pyvips.Image.uhdrload_buffer(thumbnail.data)
        assert (image.width, image.height) == (thumbnail.width, thumbnail.height)
        gain_map = pyvips.Image.new_from_buffer(image.get("gainmap-data"), "")
        assert gain_map.height > gain_map.width  # portrait, like the picture


# --- the peak -------------------------------------------------------------------------------
def hevc_clip(path: Path, x265_params: str = "", *, width: int = 256, height: int = 144,
              frames: int = 6) -> Path:
    """A colourful 10-bit HEVC clip (colour bars over a grey ramp) made with libx265."""
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx265 encoder")
    bars = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                     [235, 16, 235], [235, 16, 16], [16, 16, 235], [128, 128, 128]], np.uint8)
    top = np.repeat(bars, width // len(bars), axis=0)[None].repeat(height // 2, axis=0)
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(3, 2)
    picture = np.concatenate([top, ramp.repeat(height - height // 2, axis=0)])
    params = ":".join(p for p in ("log-level=error", x265_params) if p)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx265", rate=24, options={"x265-params": params})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        stream.time_base = Fraction(1, 24)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame = frame.reformat(format="yuv420p10le")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def first_frame_colour(path: Path) -> VideoColour:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        return detect_video_colour(container, stream, frame, path)


HDR10 = "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
MASTERING = ("master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
             "L(40000000,50)")


def test_peak_is_max_cll_else_the_mastering_display(tmp_path: Path) -> None:
    both = first_frame_colour(hevc_clip(tmp_path / "both.mp4",
                                        f"{HDR10}:{MASTERING}:max-cll=1500,400"))
    assert both.signal.peak_nits == 1500.0
    mastering = first_frame_colour(hevc_clip(tmp_path / "mastering.mp4", f"{HDR10}:{MASTERING}"))
    assert mastering.signal.peak_nits == 4000.0
    bare = first_frame_colour(hevc_clip(tmp_path / "bare.mp4", HDR10))
    assert bare.signal.peak_nits is None
    assert bare.signal.source_peak() == 1000.0  # the common grading display
    assert (bare.signal.transfer, bare.matrix_code, bare.full_range) == ("pq", 9, False)


# --- Dolby Vision profile 5 -----------------------------------------------------------------
def with_dolby_vision_record(path: Path, record: bytes) -> Path:
    """The MP4 with a `dvcC` box appended to its HEVC sample entry (FFmpeg writes `hev1`; it
    writes the index after the media data, so no chunk offset moves)."""
    data = bytearray(path.read_bytes())
    box = struct.pack(">I4s", 8 + len(record), b"dvcC") + record
    chain = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", (b"hev1", b"hvc1"))
    offset, end, ancestors = 0, len(data), []
    for depth, wanted in enumerate(chain):
        while offset < end:
            size, kind = struct.unpack_from(">I4s", data, offset)
            if kind == wanted or kind in wanted:
                break
            offset += size
        else:
            raise AssertionError(f"no {wanted!r} box")
        ancestors.append(offset)
        end = offset + size
        body = offset + 8
        offset = body + (8 if wanted == b"stsd" else 0) + (78 if depth == len(chain) - 1 else 0)
    data[end:end] = box
    for start in ancestors:
        struct.pack_into(">I", data, start, struct.unpack_from(">I", data, start)[0] + len(box))
    path.write_bytes(bytes(data))
    return path


def test_dolby_vision_profile_5_renders_its_luminance_not_green_and_purple(
        engine: LocalEngine, tmp_path: Path) -> None:
    """Profile 5's base is IPTPQc2, meaningless as Y'CbCr without the RPU's reshaping: the
    thumbnail is the base's intensity as PQ light, grey, never the bars' false colours."""
    plain = hevc_clip(tmp_path / "plain.mp4")
    coloured = pixels(render(engine, plain).thumbnails[-1].data).astype(int)
    assert np.abs(coloured[..., 0] - coloured[..., 1]).max() > 100  # the control has colour
    record = bytes([1, 0, 0x0A, 0x35, 0x00]) + bytes(19)  # profile 5, compatibility 0
    dovi = with_dolby_vision_record(tmp_path / "plain.mp4", record)
    result = render(engine, dovi)
    assert result.metadata["hdr"]["dolbyVision"]["profile"] == 5
    assert result.metadata["hdr"]["transfer"] == "pq"
    grey = pixels(result.thumbnails[-1].data).astype(int)
    assert grey.shape == coloured.shape
    assert np.abs(grey - grey.mean(axis=-1, keepdims=True)).max() <= 1
    assert grey[..., 0].std() > 20  # not a flat frame: the ramp and the bars' intensities


# --- SDR keeps today's path -----------------------------------------------------------------
def representative(path: Path) -> tuple[av.VideoFrame, Fraction]:
    container = av.open(str(path))
    stream = container.streams.video[0]
    reader = FrameReader(container, stream)
    frame = _representative_frame(reader, stream_duration(container, stream))
    sar = stream.sample_aspect_ratio or Fraction(1)
    return frame, Fraction(sar)


def old_path_thumbnail(frame: av.VideoFrame, sar: Fraction) -> pyvips.Image:
    """What the engine made of an SDR frame before HDR handling: the frame as 8-bit RGB at
    display aspect, then the thumbnails' resize."""
    width, height = display_size(frame.width, frame.height, sar)
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height,
                           interpolation="BICUBIC")
    image = pyvips.Image.new_from_array(np.ascontiguousarray(rgb), interpretation="srgb")
    return pyvips.Image.new_from_buffer(render_from_image(image, SIZES, PNG)[-1].data, "")


@pytest.mark.parametrize("name", ["sample.mp4", "roadtrip-vp92-10bit.webm", "bt601.mov",
                                  "Big_Buck_Bunny_180_10s.webm"])
def test_sdr_video_is_unchanged(engine: LocalEngine, corpus: Path, name: str) -> None:
    path = corpus / "videos" / name
    ours = pyvips.Image.new_from_buffer(render(engine, path).thumbnails[-1].data, "")
    frame, sar = representative(path)
    before = old_path_thumbnail(frame, sar)
    assert (ours.width, ours.height) == (before.width, before.height)
    assert ssim(ours, before) >= 0.98
    # The same frame taken for PQ (its 10 bits and BT.2020 matrix, misread) fails the bar.
    misread = VideoColour(Signal("pq", "bt2020", "bt2020nc"), 9)
    tone_mapped = render_hdr_frame(frame, sar, misread, SIZES, PNG)[0][-1]
    assert ssim(pyvips.Image.new_from_buffer(tone_mapped.data, ""), before) < 0.98


def test_sdr_video_never_loads_the_hdr_maths(corpus: Path) -> None:
    hdr_maths = ["media_worker.engines.video_hdr", "media_worker.engines.color.tonemap"]
    [loaded] = modules_loaded(hdr_maths, Step([corpus / "videos/roadtrip-vp92-10bit.webm"]))
    assert not any(loaded.values())
