"""A video's metadata beyond its picture (engines/video_details.py, through probe's
video_metadata): duration in ms, fps, bitrate, codecs, the audio track or `audio: null`, and
the capture facts phones write. On corpus videos whose tags ffprobe lists (MANIFEST.tsv) and
on clips made here with Debian's ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from media_worker.engines.display import DisplayTransform
from media_worker.engines.probe import video_facts, video_metadata, video_stream
from media_worker.engines.sniff import sniff
from media_worker.engines.video_details import iso6709_position

APPLE_TAGS = {
    "com.apple.quicktime.creationdate": "2023-04-01T10:20:30+0200",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
}


def metadata_of(path: Path, *, gps: bool = True) -> dict[str, Any]:
    media_type = sniff(path)
    with av.open(str(path), metadata_errors="ignore") as container:
        facts = video_facts(container, video_stream(container, media_type, path))
    return video_metadata(media_type, facts, width=facts.width, height=facts.height,
                          transform=DisplayTransform(), gps=gps)


def ffmpeg_clip(path: Path, *, audio: bool, tags: dict[str, str]) -> Path:
    """One second of 160x120 test picture at 25 fps (and a 48 kHz stereo tone), tagged."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed (apt-get install ffmpeg)")
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-c:a", "aac", "-ac", "2"]
    command += ["-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-movflags", "use_metadata_tags"]
    for name, value in tags.items():
        command += ["-metadata", f"{name}={value}"]
    subprocess.run([*command, str(path)], check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def videos(corpus: Path) -> Path:
    return corpus / "videos"


# --- the stream and the file ----------------------------------------------------------------
def test_duration_is_also_given_in_whole_milliseconds(tmp_path: Path) -> None:
    metadata = metadata_of(ffmpeg_clip(tmp_path / "clip.mp4", audio=False, tags={}))
    assert metadata["durationMs"] == 1000
    assert metadata["duration"] == 1.0  # the key in seconds stays


def test_fps_bitrate_and_video_codec(videos: Path) -> None:
    metadata = metadata_of(videos / "sample.mp4")
    assert metadata["fps"] == pytest.approx(29.97, abs=0.01)
    assert metadata["videoCodec"] == "h264"
    assert 700_000 < metadata["bitrate"] < 800_000  # ffprobe: 762 kb/s for the file


def test_av1_is_named_by_its_codec_not_its_decoder(videos: Path) -> None:
    assert metadata_of(videos / "hdr10-av1.mp4")["videoCodec"] == "av1"  # not libdav1d


def test_audio_track_has_codec_channels_and_sample_rate(tmp_path: Path) -> None:
    metadata = metadata_of(ffmpeg_clip(tmp_path / "tone.mp4", audio=True, tags={}))
    assert metadata["audio"] == {"codec": "aac", "channels": 2, "sampleRate": 48000}


def test_matroska_audio_is_described_too(videos: Path) -> None:
    assert metadata_of(videos / "sample.mkv")["audio"] == {
        "codec": "ac3", "channels": 1, "sampleRate": 44100}


def test_video_without_audio_says_audio_null(tmp_path: Path) -> None:
    metadata = metadata_of(ffmpeg_clip(tmp_path / "mute.mp4", audio=False, tags={}))
    assert metadata["audio"] is None
    assert metadata["hasAudio"] is False


def test_corpus_video_without_audio_says_audio_null(videos: Path) -> None:
    assert metadata_of(videos / "pixel7_videoOnly_cleaned.mp4")["audio"] is None


# --- takenAt --------------------------------------------------------------------------------
def test_quicktime_creationdate_gives_the_local_time_and_offset(videos: Path) -> None:
    """The iPhone's own clock, 12:41:46 at +01:00, not the file's creation_time (11:48:30
    UTC, some minutes later)."""
    assert metadata_of(videos / "dolbyVision-hdr.MOV")["takenAt"] == "2023-05-09T12:41:46+01:00"


def test_creation_time_alone_is_an_instant_in_utc(videos: Path) -> None:
    assert metadata_of(videos / "sample.mp4")["takenAt"] == "2016-05-31T17:01:35Z"


def test_matroska_date_is_utc_too(videos: Path) -> None:
    assert metadata_of(videos / "sample.mkv")["takenAt"] == "2016-05-31T17:01:35Z"


def test_creation_time_set_by_ffmpeg_is_read(tmp_path: Path) -> None:
    clip = ffmpeg_clip(tmp_path / "dated.mp4", audio=True,
                       tags={"creation_time": "2023-04-01T08:20:30Z"})
    assert metadata_of(clip)["takenAt"] == "2023-04-01T08:20:30Z"


def test_quicktime_keys_win_over_creation_time(tmp_path: Path) -> None:
    clip = ffmpeg_clip(tmp_path / "apple.mov", audio=False,
                       tags={"creation_time": "2023-04-01T08:20:31Z", **APPLE_TAGS})
    assert metadata_of(clip)["takenAt"] == "2023-04-01T10:20:30+02:00"


def test_a_video_without_dates_has_no_taken_at(videos: Path) -> None:
    assert "takenAt" not in metadata_of(videos / "pixel7_videoOnly_cleaned.mp4")


# --- camera and GPS -------------------------------------------------------------------------
def test_quicktime_make_and_model_name_the_camera(videos: Path) -> None:
    assert metadata_of(videos / "dolbyVision-hdr.MOV")["camera"] == {
        "make": "Apple", "model": "iPhone 14 Pro"}


def test_quicktime_iso6709_location_is_the_position(videos: Path) -> None:
    assert metadata_of(videos / "dolbyVision-hdr.MOV")["gps"] == {
        "lat": 51.5334, "lon": -0.1255, "alt": 26.8}


def test_android_location_atom_is_the_position(videos: Path) -> None:
    assert metadata_of(videos / "hlg10-color-test.mp4")["gps"] == {
        "lat": 51.5335, "lon": -0.1261}


def test_tags_written_by_ffmpeg_give_camera_and_position(tmp_path: Path) -> None:
    metadata = metadata_of(ffmpeg_clip(tmp_path / "apple.mov", audio=False, tags=APPLE_TAGS))
    assert metadata["camera"] == {"make": "Apple", "model": "iPhone 15"}
    assert metadata["gps"] == {"lat": 48.8584, "lon": 2.2945, "alt": 35.0}


def test_video_gps_is_left_out_unless_asked(videos: Path) -> None:
    assert "gps" not in metadata_of(videos / "dolbyVision-hdr.MOV", gps=False)


def test_videos_have_no_exposure(videos: Path) -> None:
    assert "exposure" not in metadata_of(videos / "dolbyVision-hdr.MOV")


@pytest.mark.parametrize(("text", "expected"), [
    ("+40.6892-074.0445+10.000/", {"lat": 40.6892, "lon": -74.0445, "alt": 10.0}),
    ("-33.8688+151.2093/", {"lat": -33.8688, "lon": 151.2093}),
    ("+4040.68-07430.00/", {"lat": 40.678, "lon": -74.5}),  # degrees and minutes
    ("+404041-0743000+5/", {"lat": 40.678056, "lon": -74.5, "alt": 5.0}),  # with seconds
])
def test_iso6709_forms_become_decimal_degrees(text: str, expected: dict[str, float]) -> None:
    found = iso6709_position(text)
    assert found is not None
    assert found.to_metadata() == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "Paris", "+00.0000+000.0000/", "+95.0+010.0/",
                                  "+4090.00+01000.00/", "+1.5+2.5/"])
def test_what_is_not_a_position_is_none(text: str) -> None:
    assert iso6709_position(text) is None
