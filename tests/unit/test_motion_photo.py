"""Motion photos: the still's thumbnails as ever, `metadata.motionPhoto` where the still carries
a video (Google's XMP, Samsung's trailer) or names one (an Apple Live Photo), and with
MOTION_PHOTO_PREVIEW=on the embedded video's preview clip.

The corpus has a Samsung HEIC (Google XMP and Samsung's trailer both describe its MP4; the
figures below were read by hand from the XMP, the `mpv2` entry and `ffprobe` on the bytes) and
an iPhone Live Photo still. The other motion photos are made here: a JPEG and an MP4 from
the `ffmpeg` command, joined, with the metadata written by the test.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import pyvips

from media_worker.config import ThumbnailFormat, load_settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.renditions import MOTION_PHOTO_CLIP, PreviewSpec, parse_preview
from media_worker.types import ThumbnailSize
from tests.unit.clips import made_video

SIZES = ThumbnailSize.parse_list("small:64x64")
CLIP = parse_preview("96x96:1:4:webp")
SAMSUNG = "images/camera/samsung-one-ui-6.heic"
XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, clip: PreviewSpec | None = None) -> RenderResult:
    output = OutputSpec(ThumbnailFormat.PNG, 80, motion_preview=clip)
    return engine.render(SourceMedia(path, "media", path.name), SIZES, output)


def previews(result: RenderResult) -> list[RenderedThumbnail]:
    return [thumb for thumb in result.thumbnails if thumb.kind == "preview"]


# --- what the tests' motion photos are made of ------------------------------------------------
@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Two seconds of H.264 at 10 fps, 160x90: not the still's shape, so a clip of the still
    could not pass for one of the video."""
    folder = tmp_path_factory.mktemp("motion")
    return made_video(folder / "motion.mp4", seconds=2, fps=10, keyframe_every=10).read_bytes()


def jpeg(xmp: bytes | None = None) -> bytes:
    """A grey 48x64 JPEG, with `xmp` in an APP1 segment after its SOI."""
    data = (pyvips.Image.black(48, 64, bands=3) + 128).cast("uchar").jpegsave_buffer()
    if xmp is None:
        return data
    body = XMP_ID + xmp
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def container_xmp(video_length: int) -> bytes:
    """Google's Motion Photo XMP, as a Pixel writes it: the video is the last item."""
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" '
        b'xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
        b'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
        b'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" '
        b'GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1" '
        b'GCamera:MotionPhotoPresentationTimestampUs="500000">'
        b"<Container:Directory><rdf:Seq>"
        b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" '
        b'Item:Semantic="Primary" Item:Length="0" Item:Padding="0"/></rdf:li>'
        b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4" '
        b'Item:Semantic="MotionPhoto" Item:Length="' + str(video_length).encode() + b'" '
        b'Item:Padding="0"/></rdf:li>'
        b"</rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>")


def samsung_trailer(mp4: bytes, *, back: int | None = None) -> bytes:
    """Samsung's older layout: the MP4 inside the trailer's `MotionPhoto_Data` entry, then the
    `SEFH` directory pointing `back` (by default truly) at it, its length and `SEFT`."""
    name = b"MotionPhoto_Data"
    entry = b"\x00\x00\x30\x0a" + struct.pack("<I", len(name)) + name + mp4
    directory = (b"SEFH" + struct.pack("<II", 106, 1) + b"\x00\x00\x30\x0a"
                 + struct.pack("<II", len(entry) if back is None else back, len(entry)))
    return entry + directory + struct.pack("<I", len(directory)) + b"SEFT"


@pytest.fixture(scope="module")
def google_motion_photo(tmp_path_factory: pytest.TempPathFactory, mp4: bytes) -> Path:
    path = tmp_path_factory.mktemp("google") / "PXL_MP.jpg"
    path.write_bytes(jpeg(container_xmp(len(mp4))) + mp4)
    return path


@pytest.fixture(scope="module")
def samsung_result(engine: LocalEngine, corpus: Path) -> RenderResult:
    """The corpus motion photo rendered once, with a short clip asked for."""
    return render(engine, corpus / SAMSUNG, CLIP)


# --- the corpus -------------------------------------------------------------------------------
def test_the_corpus_motion_photo_reports_its_embedded_mp4(samsung_result: RenderResult) -> None:
    """The XMP's item runs to the end of the file (Samsung's trailer included): the video is
    the MP4's own boxes, which `ffprobe` reads as 3.130 s of HEVC with AAC."""
    assert samsung_result.metadata["motionPhoto"] == {
        "standard": "google", "embedded": True, "offset": 452_284, "length": 3_226_469,
        "format": "mp4", "mimeType": "video/mp4", "codec": "hevc", "durationMs": 3130,
        "hasAudio": True, "stillAtMs": 3000}


def test_the_corpus_motion_photo_keeps_the_stills_thumbnails(
        samsung_result: RenderResult) -> None:
    """The still is a portrait 3000x4000; the video is landscape-coded."""
    still = samsung_result.thumbnails[0]
    assert (still.kind, still.width, still.height) == ("image", 48, 64)


def test_the_corpus_motion_photos_clip_is_its_video_turned_upright(
        samsung_result: RenderResult) -> None:
    """The MP4 is coded 1440x1080 with a quarter turn in its display matrix: 72x96 upright,
    one second at 4 fps."""
    (clip,) = previews(samsung_result)
    assert (clip.width, clip.height, clip.format, clip.frames) == (72, 96, "webp", 4)
    assert clip.size.name == "preview"


def test_a_live_photo_still_names_its_video_by_content_identifier(
        engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "images/formats/heic/IMG_5195.HEIC")
    assert result.metadata["motionPhoto"] == {
        "standard": "apple-live-photo", "embedded": False,
        "contentIdentifier": "570F1469-09C7-4E50-9875-05F21D5BD166"}


@pytest.mark.parametrize("name", ["images/camera/iphone_hdr_YES.jpg",
                                  "images/camera/Canon_40D.jpg"])
def test_plain_stills_have_no_motion_photo(engine: LocalEngine, corpus: Path,
                                           name: str) -> None:
    """An iPhone still outside a Live Photo has an Apple MakerNote but no content
    identifier."""
    assert "motionPhoto" not in render(engine, corpus / name).metadata


# --- made here --------------------------------------------------------------------------------
def test_a_google_motion_photo_gives_the_appended_mp4(
        engine: LocalEngine, google_motion_photo: Path, mp4: bytes) -> None:
    facts = render(engine, google_motion_photo).metadata["motionPhoto"]
    size = google_motion_photo.stat().st_size
    assert (facts["offset"], facts["length"]) == (size - len(mp4), len(mp4))
    assert (facts["codec"], facts["durationMs"], facts["stillAtMs"]) == ("h264", 2000, 500)


def test_the_clip_is_off_unless_asked_for(engine: LocalEngine,
                                          google_motion_photo: Path) -> None:
    assert previews(render(engine, google_motion_photo)) == []


def test_a_google_motion_photos_clip_is_made_from_its_video(
        engine: LocalEngine, google_motion_photo: Path) -> None:
    """One second at 4 fps of the 160x90 video, fit in 96x96."""
    (clip,) = previews(render(engine, google_motion_photo, CLIP))
    assert (clip.width, clip.height, clip.frames, clip.duration_ms) == (96, 54, 4, 1000)


def test_a_samsung_trailer_gives_the_video_inside_it(
        engine: LocalEngine, tmp_path: Path, mp4: bytes) -> None:
    still = jpeg()
    path = tmp_path / "samsung.jpg"
    path.write_bytes(still + samsung_trailer(mp4))
    facts = render(engine, path).metadata["motionPhoto"]
    assert (facts["standard"], facts["offset"], facts["length"]) == (
        "samsung", len(still) + 4 + 4 + len(b"MotionPhoto_Data"), len(mp4))


def test_a_samsung_trailer_pointing_before_the_file_leaves_a_plain_still(
        engine: LocalEngine, tmp_path: Path, mp4: bytes) -> None:
    path = tmp_path / "samsung.jpg"
    path.write_bytes(jpeg() + samsung_trailer(mp4, back=10**9))
    result = render(engine, path, CLIP)
    assert "motionPhoto" not in result.metadata
    assert [thumb.kind for thumb in result.thumbnails] == ["image"]


@pytest.mark.parametrize("lie", [10**9, 100], ids=["past-the-file", "into-the-still"])
def test_a_lying_xmp_leaves_a_plain_still(engine: LocalEngine, tmp_path: Path, mp4: bytes,
                                          lie: int) -> None:
    """A video said to start before the file, or inside the JPEG's own bytes: no video is
    there, and the still renders as any still."""
    path = tmp_path / "lying.jpg"
    path.write_bytes(jpeg(container_xmp(len(mp4) + lie)) + mp4)
    result = render(engine, path, CLIP)
    assert "motionPhoto" not in result.metadata
    assert [thumb.kind for thumb in result.thumbnails] == ["image"]


# --- the setting ------------------------------------------------------------------------------
@pytest.fixture
def no_clip_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither variable from the caller's shell or a .env."""
    for name in ("MOTION_PHOTO_PREVIEW", "VIDEO_PREVIEW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_clip_settings")
def test_motion_photo_preview_is_off_by_default() -> None:
    assert load_settings().motion_photo_clip is None


@pytest.mark.usefixtures("no_clip_settings")
def test_motion_photo_preview_takes_video_previews_clip_when_set() -> None:
    settings = load_settings(motion_photo_preview="on", video_preview="160x90:2:8:mp4")
    assert settings.motion_photo_clip == PreviewSpec(160, 90, 2, 8, "mp4")


@pytest.mark.usefixtures("no_clip_settings")
def test_motion_photo_preview_has_its_own_clip_without_video_preview() -> None:
    settings = load_settings(motion_photo_preview="on")
    assert settings.motion_photo_clip == MOTION_PHOTO_CLIP == PreviewSpec(480, 480, 3, 12, "webp")
