"""The in-process engine on video: a representative frame, upright, at display aspect."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
import pyvips
from PIL import Image, ImageDraw

from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
from media_worker.types import ThumbnailSize

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")
BOX_300 = ThumbnailSize.parse_list("box:300x300")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path,
           sizes: list[ThumbnailSize] = SIZES) -> RenderResult:
    output = OutputSpec(ThumbnailFormat.PNG, 80)
    return engine.render(SourceMedia(path, "media", path.name), sizes, output)


def decoded(result: RenderResult) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(result.thumbnails[0].data, "")


def black_then_picture(path: Path, *, black_seconds: float, seconds: float,
                       fps: int = 24, faststart: bool = False) -> Path:
    """A 320x240 H.264 clip: black at first, then a gradient with a moving square. Its index
    (moov) comes after the frames, or before them with `faststart`."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available
                                      else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(int(seconds * fps)):
            picture = Image.new("RGB", (320, 240))
            if index >= black_seconds * fps:
                picture = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
                ImageDraw.Draw(picture).rectangle([index, 80, index + 60, 160], fill="orange")
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_mp4_gives_a_frame_and_its_metadata(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "videos/sample.mp4")
    assert [(t.width, t.height) for t in result.thumbnails] == [(150, 100), (1080, 720)]
    metadata = result.metadata
    assert {"kind": "video", "format": "mp4", "mimeType": "video/mp4", "width": 1080,
            "height": 720, "codec": "h264", "rotation": 0, "hasAudio": True}.items() \
        <= metadata.items()
    assert metadata["duration"] == pytest.approx(1.0, abs=0.05)
    assert metadata["frameRate"] == pytest.approx(29.97, abs=0.01)


def test_rotated_phone_video_comes_out_portrait(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "videos/video_rotation_90.mp4")
    assert (result.metadata["width"], result.metadata["height"]) == (60, 100)
    assert result.metadata["rotation"] == 90
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (60, 100)


def test_mirroring_display_matrix_is_applied(engine: LocalEngine, corpus: Path) -> None:
    """Same clip as sample.mp4 with matrix [0 1; 1 0]: the picture must be its transpose,
    not merely turned 90° (which would show it mirrored)."""
    plain = decoded(render(engine, corpus / "videos/sample.mp4", BOX_300))
    result = render(engine, corpus / "videos/sample_rotate_and_reflect.mp4", BOX_300)
    assert (result.metadata["rotation"], result.metadata["mirrored"]) == (90, True)
    transposed = plain.rot("d270").flipver()
    assert (decoded(result) - transposed).abs().avg() < 3
    assert (decoded(result) - plain.rot("d90")).abs().avg() > 20


def test_non_square_pixels_are_stretched_to_display_aspect(engine: LocalEngine,
                                                           corpus: Path) -> None:
    result = render(engine, corpus / "videos/h264_white_frame_sar_16_9.mp4")
    assert (result.metadata["width"], result.metadata["height"]) == (1138, 480)  # 640 x 16/9


@pytest.mark.parametrize("name", ["tiny_av1.mp4", "minimal.mp4", "hevc_white_frame.mp4"])
def test_one_frame_video_renders(engine: LocalEngine, corpus: Path, name: str) -> None:
    assert render(engine, corpus / "videos" / name).thumbnails[0].data


def test_all_black_video_still_gets_a_thumbnail(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "videos/silent-black-10s.mp4")
    assert decoded(result).max() < 40


def test_representative_frame_skips_a_black_opening(engine: LocalEngine,
                                                    tmp_path: Path) -> None:
    clip = black_then_picture(tmp_path / "fade.mp4", black_seconds=1.2, seconds=3)
    image = decoded(render(engine, clip))
    assert image.deviate() > 20  # a picture, not the black opening


def test_video_longer_than_the_limit_is_refused(corpus: Path) -> None:
    engine = LocalEngine(max_pixels=100_000_000, max_video_seconds=0.5)
    with pytest.raises(LimitExceededError, match="MAX_VIDEO_SECONDS"):
        render(engine, corpus / "videos/sample.mp4")


def test_video_frame_larger_than_the_pixel_limit_is_refused(corpus: Path) -> None:
    engine = LocalEngine(max_pixels=1080 * 720 - 1, max_video_seconds=3600)
    with pytest.raises(LimitExceededError, match="1080x720"):
        render(engine, corpus / "videos/sample.mp4")


@pytest.mark.parametrize("name", ["sample_audio_only.mp4", "sine-3s-xhe-aac-44khz-mono.mp4",
                                  "sample.wav"])
def test_audio_only_file_is_unsupported(engine: LocalEngine, corpus: Path, name: str) -> None:
    with pytest.raises(UnsupportedMediaError, match="no video stream"):
        render(engine, corpus / "videos/no-video-stream" / name)


def test_undecodable_bitstream_is_corrupt(engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(CorruptMediaError, match="no frame could be decoded"):
        render(engine, corpus / "videos/malformed/invalid-bitstream.webm")


def test_ffmpeg_errors_read_as_one_plain_line(engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(CorruptMediaError) as caught:
        render(engine, corpus / "videos/malformed/sample_malformed_free_box.mp4")
    message = str(caught.value)
    assert message == "cannot decode MP4: Invalid data found when processing input"


def truncated(clip: Path, keep: float) -> Path:
    cut = clip.with_name(f"cut-{clip.name}")
    cut.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * keep)])
    return cut


def test_truncated_video_without_its_index_is_corrupt(engine: LocalEngine,
                                                      tmp_path: Path) -> None:
    """The index (moov) is written after the frames: cut in half, the file has none."""
    clip = black_then_picture(tmp_path / "whole.mp4", black_seconds=0, seconds=1)
    with pytest.raises(CorruptMediaError) as caught:
        render(engine, truncated(clip, 0.5))
    assert str(caught.value) == "cannot decode MP4: Invalid data found when processing input"


def test_truncated_video_with_its_index_first_is_recovered(engine: LocalEngine,
                                                           tmp_path: Path) -> None:
    """Index first (faststart, as uploads from phones and web encoders are): the frames that
    arrived still give a thumbnail."""
    clip = black_then_picture(tmp_path / "whole.mp4", black_seconds=0, seconds=2,
                              faststart=True)
    assert clip.read_bytes().find(b"moov") < clip.read_bytes().find(b"mdat")
    result = render(engine, truncated(clip, 0.6))
    assert [(t.width, t.height) for t in result.thumbnails] == [(150, 113), (320, 240)]


def test_every_malformed_video_ends_in_a_result_or_a_permanent_error(
        engine: LocalEngine, corpus: Path) -> None:
    outcomes = {}
    for path in sorted((corpus / "videos" / "malformed").iterdir()):
        try:
            outcomes[path.name] = f"ok {render(engine, path).metadata['codec']}"
        except (CorruptMediaError, UnsupportedMediaError, LimitExceededError) as exc:
            outcomes[path.name] = type(exc).__name__
    assert outcomes["short-cenc.mp4"] == "CorruptMediaError"
    assert outcomes["video_dovi_3840x2160_30fps_dav1_10.mp4"] == "NoDecoderError"
    vvc = "ok vvc" if "vvc" in av.codecs_available else "NoDecoderError"
    assert outcomes["vvc_400kbps_2s.mp4"] == vvc


def test_a_stream_without_a_decoder_is_an_unsupported_codec(engine: LocalEngine,
                                                            corpus: Path) -> None:
    """Dolby Vision AV1 under the `dav1` sample entry: PyAV gives the stream no codec
    context, which once ended as an AttributeError retried as an internal error."""
    with pytest.raises(UnsupportedMediaError) as caught:
        render(engine, corpus / "videos/malformed/video_dovi_3840x2160_30fps_dav1_10.mp4")
    assert str(caught.value) == ("unsupported codec 'dav1': FFmpeg has no decoder for the "
                                 "video stream of this MP4")
