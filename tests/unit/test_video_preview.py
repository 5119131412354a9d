"""Preview clips (VIDEO_PREVIEW): from the representative frame, sampled at the clip's rate,
fit inside the box, upright, at display aspect, tone-mapped, looping WebP or H.264 MP4."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import pytest
import pyvips
from PIL import Image

from media_worker.engines.display import DisplayTransform
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail
from media_worker.engines.probe import stream_duration, video_stream
from media_worker.engines.sniff import sniff
from media_worker.engines.video import _representative_frame
from media_worker.engines.video_frames import FramePainter
from media_worker.engines.video_preview import render_preview, sampled_frames
from media_worker.engines.video_reader import FrameReader
from media_worker.renditions import parse_preview
from media_worker.types import ThumbnailSize
from tests.unit.clips import difference, first_page, made_video, of_kind, render


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


@pytest.fixture(scope="module")
def ten_fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 10 fps, a keyframe every second."""
    return made_video(tmp_path_factory.mktemp("clips") / "ten-fps.mp4", seconds=2, fps=10,
                      keyframe_every=10)


def preview(engine: LocalEngine, path: Path, spec: str, **limits: int) -> RenderedThumbnail:
    [clip] = of_kind(render(engine, path, preview=spec, **limits), "preview")
    return clip


def sampled_times(path: Path, *, start: float, count: int, fps: int) -> list[float]:
    with av.open(str(path)) as container:
        reader = FrameReader(container, container.streams.video[0])
        reader.seek(start)
        frames = sampled_frames(reader, reader.frames(), start=start, count=count, fps=fps)
        return [round(reader.time_of(frame), 3) for frame in frames]


def test_a_webp_preview_loops_forever_with_one_frame_per_tick(engine: LocalEngine,
                                                              corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/sample.mp4", "160x160:1:6:webp")
    assert (clip.size.name, clip.kind, clip.format, clip.mime_type) == (
        "preview", "preview", "webp", "image/webp")
    # 1.02 s at 29.97 fps from the representative frame at 0.1 s: six ticks of 1/6 s fit
    assert (clip.frames, clip.duration_ms) == (6, 1000)
    with Image.open(io.BytesIO(clip.data)) as pillow:
        assert (pillow.n_frames, pillow.info["loop"], pillow.size) == (6, 0, (160, 107))
        delays = []
        for index in range(pillow.n_frames):
            pillow.seek(index)
            pillow.load()  # the frame's timing is read with its pixels
            delays.append(pillow.info["duration"])
    # millisecond delays that round 1000/6 without drifting: the loop lasts 1 s
    assert all(abs(delay - 1000 / 6) < 1 for delay in delays)
    assert abs(sum(delays) - clip.duration_ms) <= 1
    vips = pyvips.Image.new_from_buffer(clip.data, "", n=-1)
    assert (vips.get("n-pages"), vips.get("loop"), vips.get("page-height")) == (6, 0, 107)


def test_an_mp4_preview_is_h264_without_audio_and_starts_with_its_index(
        engine: LocalEngine, corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/sample.mp4", "161x161:1:6:mp4")
    assert (clip.format, clip.mime_type, clip.frames) == ("mp4", "video/mp4", 6)
    assert (clip.width, clip.height) == (160, 106)  # 4:2:0 wants even sides
    assert clip.data.find(b"moov") < clip.data.find(b"mdat")  # faststart
    with av.open(io.BytesIO(clip.data)) as container:
        assert not container.streams.audio
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        frames = list(container.decode(stream))
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (160, 106)


def test_identical_frames_are_stored_once_and_the_clip_keeps_its_length(
        engine: LocalEngine, corpus: Path) -> None:
    """libwebp stores a frame identical to the one before as a longer delay of that one."""
    clip = preview(engine, corpus / "videos/white.mp4", "96x96:1:4:webp")
    assert (clip.frames, clip.duration_ms) == (4, 1000)
    with Image.open(io.BytesIO(clip.data)) as pillow:
        assert pillow.n_frames == 1  # one white frame, shown for the whole second


def test_the_clip_samples_the_latest_frame_at_each_tick(ten_fps: Path) -> None:
    assert sampled_times(ten_fps, start=0.0, count=5, fps=5) == [0.0, 0.2, 0.4, 0.6, 0.8]


def test_a_clip_faster_than_its_source_repeats_frames(ten_fps: Path) -> None:
    assert sampled_times(ten_fps, start=0.0, count=6, fps=20) == [
        0.0, 0.0, 0.1, 0.1, 0.2, 0.2]


def test_a_clip_ends_early_with_the_video(ten_fps: Path) -> None:
    assert sampled_times(ten_fps, start=1.5, count=10, fps=5) == [1.5, 1.7, 1.9]


def test_the_clip_goes_on_from_the_representative_frame_without_decoding_to_it_again(
        tmp_path: Path) -> None:
    """30 s at 10 fps with one keyframe: the representative frame (3 s in) costs 31 frames;
    a second trip from the keyframe would cost them again."""
    path = made_video(tmp_path / "one-keyframe.mp4", seconds=30, fps=10, keyframe_every=1000)
    with av.open(str(path)) as container:
        stream = video_stream(container, sniff(path), path)
        reader = FrameReader(container, stream)
        first = _representative_frame(reader, stream_duration(container, stream))
        to_first = reader.decoded
        painter = FramePainter(Fraction(1), DisplayTransform())
        clip = render_preview(reader, first, painter, parse_preview("96x96:1:5:webp"),
                              OutputSpec(), source_fps=10)
    assert to_first >= 30
    assert clip.frames == 5
    assert reader.decoded - to_first <= 10 + 4  # the second's frames, and the decoder's delay


def test_the_preview_fits_its_box_and_is_never_upscaled(engine: LocalEngine,
                                                        corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/video_rotation_90.mp4", "480x480:1:6")
    assert (clip.width, clip.height, clip.frames) == (60, 100, 1)  # one frame, turned upright


def test_a_mirroring_display_matrix_is_applied_to_the_clip(engine: LocalEngine,
                                                           corpus: Path) -> None:
    plain = first_page(preview(engine, corpus / "videos/sample.mp4", "120x120:1:2").data)
    mirrored = first_page(preview(engine, corpus / "videos/sample_rotate_and_reflect.mp4",
                                  "120x120:1:2").data)
    assert difference(mirrored, plain.rot("d270").flipver()) < 4
    assert difference(mirrored, plain.rot("d90")) > 20


def test_non_square_pixels_are_stretched_in_the_clip(engine: LocalEngine,
                                                     corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/h264_white_frame_sar_16_9.mp4", "240x240:1:6")
    assert (clip.width, clip.height) == (240, 101)  # 640x480 shown as 1138x480


@pytest.fixture(scope="module")
def colour_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FFmpeg's saturated test pattern: a wrong YCbCr matrix shows on it."""
    return made_video(tmp_path_factory.mktemp("bars") / "bars.mp4", seconds=2, fps=10,
                      keyframe_every=10, size="320x180")


@pytest.mark.parametrize(("name", "fmt"), [
    ("bars", "webp"), ("bars", "mp4"), ("videos/bt601.mov", "webp"),
    ("videos/pixel7_videoOnly_cleaned.mp4", "mp4")])  # full range, turned 180°
def test_the_clip_starts_on_the_still_in_its_colours(engine: LocalEngine, corpus: Path,
                                                     colour_bars: Path, name: str,
                                                     fmt: str) -> None:
    """Unturned SDR frames go to the encoder in YCbCr straight from FFmpeg, turned ones
    through RGB: either way the clip's colours are the still's. Compared at an eighth of
    the size, where compression no longer shows and a BT.601/BT.709 mix-up (above 7) does."""
    path = colour_bars if name == "bars" else corpus / name
    result = render(engine, path, preview=f"160x160:1:4:{fmt}",
                    sizes=[ThumbnailSize.parse("box:160x160")])
    still, clip = first_page(result.thumbnails[0].data), of_kind(result, "preview")[0]
    picture = first_page(clip.data) if fmt == "webp" else _first_mp4_frame(clip.data)
    if (picture.width, picture.height) != (still.width, still.height):  # MP4: even sides
        still = still.resize(picture.width / still.width,
                             vscale=picture.height / still.height)
    assert difference(picture.resize(0.125), still.resize(0.125)) < 4.5


def _first_mp4_frame(data: bytes) -> pyvips.Image:
    with av.open(io.BytesIO(data)) as container:
        first = next(container.decode(video=0)).to_image()
    return pyvips.Image.new_from_memory(first.tobytes(), first.width, first.height, 3,
                                        "uchar")


@pytest.mark.parametrize("name", ["hdr10-av1.mp4", "hlg10-color-test.mp4"])
def test_an_hdr_clip_is_tone_mapped_as_the_still_is(engine: LocalEngine, corpus: Path,
                                                    name: str) -> None:
    box = ThumbnailSize.parse("box:160x160")
    result = render(engine, corpus / "videos" / name, preview="160x160:1:4", sizes=[box])
    still, clip = result.thumbnails[0], of_kind(result, "preview")[0]
    assert (clip.width, clip.height) == (still.width, still.height)
    assert difference(first_page(clip.data), first_page(still.data)) < 6


def test_a_clip_is_cut_at_the_animation_frame_limit(engine: LocalEngine,
                                                    corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/sample.mp4", "160x160:1:6",
                   max_animation_frames=3)
    assert (clip.frames, clip.duration_ms) == (3, 500)
    with Image.open(io.BytesIO(clip.data)) as pillow:
        assert pillow.n_frames == 3


def test_a_clip_is_cut_at_the_animation_pixel_limit(engine: LocalEngine,
                                                    corpus: Path) -> None:
    clip = preview(engine, corpus / "videos/sample.mp4", "160x160:1:6",
                   max_animation_pixels=2 * 160 * 107)
    assert clip.frames == 2


def test_stills_get_no_preview(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "images/orientation/Landscape_0.jpg",
                    preview="160x160:1:6", storyboard="80x80:auto")
    assert {thumb.kind for thumb in result.thumbnails} == {"image"}
